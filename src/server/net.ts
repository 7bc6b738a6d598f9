/**
 * Fetching image URLs without becoming a proxy into the server's network (SSRF).
 *
 * - Only http(s), no credentials in the URL.
 * - The host name is resolved once (`dns.lookup({ all: true })`); every address must be public unless
 *   private URLs are allowed; the connection then goes to the checked address (the name is sent only as
 *   Host / TLS server name), so a second, different DNS answer (rebinding) is never used.
 * - Redirects are followed by hand, each hop checked again, at most `maxRedirects`.
 * - Size (Content-Length and the bytes actually read) and time (one deadline for all hops) are limited.
 *
 * Resolver and connector are injectable for tests (a fake name → fake public IP → local listener).
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { InputError } from '../errors.ts';

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;
/** Where to really dial for a checked address (tests map a fake public IP to a local port). */
export type Connector = (address: string, port: number) => { host: string; port: number };

export interface FetchLimits {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly maxRedirects: number;
  readonly allowPrivate: boolean;
  readonly resolve?: Resolver;
  readonly connect?: Connector;
  readonly signal?: AbortSignal;
}

// two lists: node's BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules too
const blocked4 = new net.BlockList();
const blocked6 = new net.BlockList();
for (const [a, p] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked4.addSubnet(a, p, 'ipv4');
for (const [a, p] of [
  ['::', 128], ['::1', 128], ['::ffff:0:0', 96], ['::', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) blocked6.addSubnet(a, p, 'ipv6');

/**
 * Why an address may not be fetched from (loopback, private, link-local, unique-local, multicast, reserved,
 * IPv4-mapped/-compatible, NAT64, 6to4, Teredo…), or null if it is public.
 */
export function blockedReason(address: string): string | null {
  const v = net.isIP(address);
  if (v === 0) return `'${address}' is not an IP address`;
  // IPv4-mapped/-compatible IPv6 and zone ids are refused as a whole
  if (v === 6 && (address.includes('%') || /^::(ffff:)?(\d+\.){3}\d+$/i.test(address))) return `${address} is an IPv4-mapped or scoped IPv6 address`;
  return (v === 4 ? blocked4.check(address, 'ipv4') : blocked6.check(address, 'ipv6')) ? `${address} is a loopback, private, link-local or reserved address` : null;
}

const systemResolve: Resolver = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** Fetch `url`'s body as bytes within the limits; every refusal or failure is an InputError. */
export async function fetchChecked(url: string, limits: FetchLimits): Promise<Uint8Array> {
  const deadline = AbortSignal.timeout(limits.timeoutMs);
  const signal = limits.signal ? AbortSignal.any([limits.signal, deadline]) : deadline;
  let current = url;
  for (let hop = 0; ; hop++) {
    const target = await checkUrl(current, limits, signal);
    const res = await request(target, limits, signal);
    if (res.status >= 300 && res.status < 400 && res.location !== undefined) {
      if (hop >= limits.maxRedirects) throw new InputError(`image URL redirected more than ${limits.maxRedirects} times`);
      try {
        current = new URL(res.location, current).href;
      } catch {
        throw new InputError('image URL redirected to an invalid location');
      }
      continue;
    }
    if (res.status !== 200) throw new InputError(`image URL answered HTTP ${res.status}`);
    return res.body!;
  }
}

interface Target {
  url: URL;
  address: string;
}

async function checkUrl(raw: string, limits: FetchLimits, signal: AbortSignal): Promise<Target> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError('image URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`image URL scheme ${url.protocol} is not allowed (http or https)`);
  if (url.username || url.password) throw new InputError('image URLs with credentials are not allowed');
  // WHATWG parsing already turned decimal / hex / octal IPv4 forms into dotted quads
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new InputError('image URL has no host');
  let addresses: { address: string }[];
  if (net.isIP(host)) addresses = [{ address: host }];
  else {
    try {
      addresses = await raceSignal((limits.resolve ?? systemResolve)(host), signal);
    } catch (e) {
      if (signal.aborted) throw new InputError('image URL: timed out');
      throw new InputError(`image URL host '${host}' does not resolve (${(e as Error).message})`);
    }
  }
  if (!addresses.length) throw new InputError(`image URL host '${host}' does not resolve`);
  if (!limits.allowPrivate)
    for (const { address } of addresses) {
      const why = blockedReason(address);
      if (why) throw new InputError(`image URL host '${host}' is not allowed: ${why}`);
    }
  return { url, address: addresses[0]!.address };
}

function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function request(t: Target, limits: FetchLimits, signal: AbortSignal): Promise<{ status: number; location?: string; body?: Uint8Array }> {
  const tls = t.url.protocol === 'https:';
  const port = t.url.port ? Number(t.url.port) : tls ? 443 : 80;
  const dial = limits.connect ? limits.connect(t.address, port) : { host: t.address, port };
  return new Promise((resolve, reject) => {
    const fail = (m: string) => reject(new InputError(`image URL: ${m}`));
    const req = (tls ? https : http).request({
      host: dial.host, port: dial.port, method: 'GET', path: `${t.url.pathname}${t.url.search}`, agent: false, signal,
      headers: { host: t.url.host, 'user-agent': 'vista-server', accept: 'image/*' },
      ...(tls && !net.isIP(t.url.hostname) ? { servername: t.url.hostname } : {}),
      // never let the client resolve anything itself
      lookup: (_h: string, _o: unknown, cb: (e: Error | null, a: string, f: number) => void) => cb(null, dial.host, net.isIP(dial.host) || 4),
    });
    req.on('error', (e) => fail(signal.aborted ? 'timed out' : e.message));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return resolve({ status, location: res.headers.location });
      }
      if (status !== 200) {
        res.resume();
        return resolve({ status });
      }
      const declared = Number(res.headers['content-length']);
      if (declared > limits.maxBytes) {
        res.destroy();
        return fail(`image is ${declared} bytes, above the limit of ${limits.maxBytes}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limits.maxBytes) {
          res.destroy();
          fail(`image is larger than the limit of ${limits.maxBytes} bytes`);
        } else chunks.push(c);
      });
      res.on('error', (e) => fail(signal.aborted ? 'timed out' : e.message));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status, body: new Uint8Array(b.buffer, b.byteOffset, b.length) });
      });
    });
    req.end();
  });
}
