/** The Node adapter: run the Hono app on `@hono/node-server`. */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve as nodeServe } from '@hono/node-server';
import { createServer, type ServerOptions, type VistaApp } from './app.ts';

export interface ServeOptions extends ServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8080; 0 = any free port. */
  readonly port?: number;
}

export interface RunningServer {
  readonly url: string;
  readonly app: VistaApp;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Listen on host:port and resolve once listening.
 * @example const s = await serve({ model, modelName: 'vista', port: 0 }); console.log(s.url); await s.close();
 */
export function serve(opts: ServeOptions): Promise<RunningServer> {
  const app = createServer(opts);
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = nodeServe({ fetch: app.fetch, hostname: host, port: opts.port ?? 8080 }, (info: AddressInfo) => {
      const h = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${h}:${info.port}`, app, server: server as Server,
        close: () => new Promise<void>((res) => {
          (server as Server).closeAllConnections?.();
          server.close(() => res());
        }),
      });
    }) as Server;
    server.once('error', reject);
    // slow or stalled clients cannot hold sockets forever
    server.headersTimeout = 30_000;
    server.requestTimeout = 0; // streams may run long; the per-request limit is the app's
  });
}
