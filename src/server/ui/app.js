/* vista web chat: plain browser JavaScript, no dependencies, no build step.
 *
 * Safety rules (the page's CSP also forbids any remote load):
 * - model output only ever becomes DOM text nodes (textContent / createTextNode), never innerHTML;
 * - markdown images in an answer become a "load remote image?" button: nothing is fetched until it is clicked;
 * - markdown links become <a rel="noopener noreferrer" target="_blank"> for http(s)/mailto only, followed on click only.
 *
 * Geometry: `[x0, y0, x1, y1]` boxes, `[x, y]` points and `click(x, y)` in an answer, and `click` tool calls with
 * `{x, y}` arguments, are on a 0–1000 grid over the most recently attached image; the answer shows a copy of that
 * image with the boxes and points drawn over it.
 */
/* global document, window, FileReader, requestAnimationFrame, location */

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = String(text);
  return e;
};

const ui = {
  messages: $('messages'), empty: $('empty'), form: $('composer'), prompt: $('prompt'), file: $('file'),
  attachments: $('attachments'), send: $('send'), stop: $('stop'), status: $('status'), dropHint: $('drop-hint'),
  model: $('model'), clear: $('clear'), system: $('system'), temperature: $('temperature'), maxTokens: $('max-tokens'),
  clickTool: $('click-tool'), apiKey: $('api-key'),
};

const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const CLICK_TOOL = {
  type: 'function',
  function: {
    name: 'click',
    description: 'Click a point on the image. x and y are on a 0-1000 grid (0,0 = top left, 1000,1000 = bottom right).',
    parameters: {
      type: 'object',
      properties: { x: { type: 'integer', minimum: 0, maximum: 1000 }, y: { type: 'integer', minimum: 0, maximum: 1000 } },
      required: ['x', 'y'],
    },
  },
};

/** @type {{ dataUrl: string, name: string }[]} */
let attachments = [];
/** The conversation in OpenAI form. */
let history = [];
/** Data URLs of the images in the latest user message that had any. */
let lastImages = [];
let modelName = 'vista';
/** @type {AbortController | null} */
let controller = null;

// ---------- status, attachments ----------

function setStatus(text) {
  ui.status.textContent = text || '';
}

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error || new Error('could not read the file'));
    r.readAsDataURL(file);
  });
}

async function addFiles(files) {
  const list = Array.from(files || []).filter(Boolean);
  const skipped = [];
  for (const f of list) {
    if (!/^image\//.test(f.type)) {
      skipped.push(`${f.name || 'file'} (not an image)`);
      continue;
    }
    if (f.size > MAX_IMAGE_BYTES) {
      skipped.push(`${f.name || 'image'} (larger than 10 MB)`);
      continue;
    }
    try {
      const dataUrl = await readAsDataUrl(f);
      attachments.push({ dataUrl, name: f.name || 'pasted image' });
    } catch (e) {
      skipped.push(`${f.name || 'image'} (${e.message})`);
    }
  }
  renderAttachments();
  setStatus(skipped.length ? `Skipped: ${skipped.join(', ')}` : '');
  updateSend();
}

function renderAttachments() {
  ui.attachments.replaceChildren(...attachments.map((a, i) => {
    const t = el('div', 'thumb');
    t.setAttribute('role', 'listitem');
    const img = el('img');
    img.src = a.dataUrl; // a data: URL read from the user's own file
    img.alt = a.name;
    const rm = el('button', null, '×');
    rm.type = 'button';
    rm.setAttribute('aria-label', `Remove ${a.name}`);
    rm.addEventListener('click', () => {
      attachments.splice(i, 1);
      renderAttachments();
      updateSend();
      ui.prompt.focus();
    });
    t.append(img, rm);
    return t;
  }));
}

function updateSend() {
  ui.send.disabled = !!controller || (!ui.prompt.value.trim() && attachments.length === 0);
}

// ---------- safe rendering of model text ----------

const SAFE_LINK = /^(https?:|mailto:)/i;

/** Inline markdown (images, links, `code`, **bold**) → DOM nodes; everything else stays text. */
function renderInline(text, parent) {
  const re = /!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"\n]*")?\s*\)|\[([^\]\n]+)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"\n]*")?\s*\)|`([^`\n]+)`|\*\*([^*\n]+)\*\*/g;
  let last = 0;
  for (let m; (m = re.exec(text));) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    last = re.lastIndex;
    if (m[2] !== undefined) parent.append(remoteImage(m[1], m[2]));
    else if (m[4] !== undefined) parent.append(link(m[3], m[4]));
    else if (m[5] !== undefined) parent.append(el('code', 'inline', m[5]));
    else parent.append(el('strong', null, m[6]));
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function link(label, url) {
  if (!SAFE_LINK.test(url)) return document.createTextNode(`[${label}](${url})`);
  const a = el('a', 'ext', label);
  a.href = url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.referrerPolicy = 'no-referrer';
  a.title = url;
  return a;
}

/** A markdown image: a button; nothing is requested unless the user clicks it. */
function remoteImage(alt, url) {
  const b = el('button', 'remote-image');
  b.type = 'button';
  b.dataset.url = url;
  b.title = url;
  b.append(el('span', null, `🖼 load remote image?${alt ? ` “${alt}”` : ''}`), el('span', 'url', url));
  b.addEventListener('click', () => {
    let u;
    try {
      u = new URL(url, location.href);
    } catch {
      return;
    }
    if (u.origin === location.origin || /^data:image\//i.test(url)) {
      const img = el('img');
      img.alt = alt;
      img.src = u.href;
      b.replaceWith(img);
    } else if (/^https?:$/.test(u.protocol)) {
      // the page's CSP does not allow remote images, so it opens on its own, without opener or referrer
      window.open(u.href, '_blank', 'noopener,noreferrer');
    }
  });
  return b;
}

/** Text with ``` fences → <pre> blocks and inline-rendered text. */
function renderMarkdown(text, parent) {
  const parts = text.split(/^```[^\n]*$/m);
  parts.forEach((part, i) => {
    if (i % 2 === 1) parent.append(el('pre', null, part.replace(/^\n/, '').replace(/\n$/, '')));
    else if (part) renderInline(part, parent);
  });
}

// ---------- geometry ----------

const NUM = '(-?\\d+(?:\\.\\d+)?)';
const GEOM_RE = new RegExp(
  `\\[\\s*${NUM}\\s*,\\s*${NUM}\\s*,\\s*${NUM}\\s*,\\s*${NUM}\\s*\\]` + // box
  `|\\bclick\\(\\s*(?:x\\s*=\\s*)?${NUM}\\s*,\\s*(?:y\\s*=\\s*)?${NUM}\\s*\\)` + // click(x, y)
  `|\\[\\s*${NUM}\\s*,\\s*${NUM}\\s*\\]`, // point
  'g');

const inGrid = (...v) => v.every((n) => Number.isFinite(n) && n >= 0 && n <= 1000);

/**
 * A short label for a box or point at text[index, end): a JSON `"label": "…"` in the same object, else the last
 * words before it (since the previous box or point), else `fallback`.
 */
function labelFor(text, from, index, end, fallback) {
  const open = text.lastIndexOf('{', index);
  const close = text.indexOf('}', end);
  if (open >= from && close >= 0) {
    const obj = text.slice(open, close + 1);
    const m = /"(?:label|name|object|text)"\s*:\s*"([^"\n]{1,40})"/.exec(obj);
    if (m) return m[1].slice(0, 24);
  }
  const line = text.slice(Math.max(from, text.lastIndexOf('\n', index - 1) + 1), index);
  const words = line.replace(/\b(bbox(_2d)?|box|point|at|is|are|and|the|a|an|in|of|located|position|coordinates?|label)\b/gi, ' ')
    .replace(/[^\p{L}\s]+/gu, ' ').trim().split(/\s+/).filter(Boolean);
  const label = words.slice(-3).join(' ');
  return label ? label.slice(0, 24) : fallback;
}

/** Boxes and points (0–1000 grid) in an answer's text. */
function findGeometry(text) {
  const boxes = [];
  const points = [];
  let from = 0;
  for (let m; (m = GEOM_RE.exec(text)); from = GEOM_RE.lastIndex) {
    if (m[1] !== undefined) {
      const [a, b, c, d] = [m[1], m[2], m[3], m[4]].map(Number);
      const x0 = Math.min(a, c), x1 = Math.max(a, c), y0 = Math.min(b, d), y1 = Math.max(b, d);
      if (inGrid(x0, y0, x1, y1) && x1 > x0 && y1 > y0) boxes.push({ x0, y0, x1, y1, label: labelFor(text, from, m.index, GEOM_RE.lastIndex, String(boxes.length + 1)) });
    } else if (m[5] !== undefined) {
      const x = Number(m[5]), y = Number(m[6]);
      if (inGrid(x, y)) points.push({ x, y, click: true, label: `click ${x},${y}` });
    } else {
      const x = Number(m[7]), y = Number(m[8]);
      if (inGrid(x, y)) points.push({ x, y, click: false, label: labelFor(text, from, m.index, GEOM_RE.lastIndex, `${x},${y}`) });
    }
  }
  return { boxes, points };
}

function clickPoint(call) {
  if (!/click|tap|point/i.test(call.name)) return null;
  let args;
  try {
    args = JSON.parse(call.arguments || '{}');
  } catch {
    return null;
  }
  const x = Number(args?.x), y = Number(args?.y);
  return args && inGrid(x, y) ? { x, y, click: true, label: `${call.name} ${x},${y}` } : null;
}

/** A copy of the image with boxes and points positioned in percent of its size. */
function annotatedImage(src, boxes, points) {
  const wrap = el('figure', 'annotated');
  wrap.setAttribute('aria-label', `Image with ${boxes.length} box(es) and ${points.length} point(s)`);
  const img = el('img');
  img.src = src; // the user's own image (data: URL)
  img.alt = 'your image, annotated';
  const ov = el('div', 'overlay');
  for (const b of boxes) {
    const d = el('div', 'ov-box');
    d.style.left = `${b.x0 / 10}%`;
    d.style.top = `${b.y0 / 10}%`;
    d.style.width = `${(b.x1 - b.x0) / 10}%`;
    d.style.height = `${(b.y1 - b.y0) / 10}%`;
    d.dataset.coords = [b.x0, b.y0, b.x1, b.y1].join(',');
    d.title = `${b.label}: [${b.x0}, ${b.y0}, ${b.x1}, ${b.y1}]`;
    d.append(el('span', 'ov-label', b.label));
    ov.append(d);
  }
  for (const p of points) {
    const d = el('div', p.click ? 'ov-point click' : 'ov-point');
    d.style.left = `${p.x / 10}%`;
    d.style.top = `${p.y / 10}%`;
    d.dataset.coords = `${p.x},${p.y}`;
    d.title = p.label;
    d.append(el('span', 'ov-label', p.label));
    ov.append(d);
  }
  wrap.append(img, ov);
  return wrap;
}

function toolCard(call) {
  const card = el('div', 'tool-call');
  card.setAttribute('role', 'group');
  card.setAttribute('aria-label', `tool call ${call.name}`);
  const head = el('div', 'tool-head');
  head.append(document.createTextNode('tool call · '), el('span', 'tool-name', call.name || '(unnamed)'));
  let pretty = call.arguments || '';
  try {
    pretty = JSON.stringify(JSON.parse(pretty), null, 2);
  } catch {
    // still streaming, or not JSON: shown as it is
  }
  card.append(head, el('pre', 'tool-args', pretty));
  return card;
}

// ---------- messages ----------

function addMessage(role, cls) {
  ui.empty.hidden = true;
  const m = el('article', `msg ${role}${cls ? ` ${cls}` : ''}`);
  m.append(el('div', 'role', role === 'user' ? 'You' : role === 'assistant' ? modelName : role));
  ui.messages.append(m);
  return m;
}

function scrollDown() {
  const box = ui.messages;
  box.scrollTop = box.scrollHeight;
}

function renderUser(text, images) {
  const m = addMessage('user');
  if (images.length) {
    const row = el('div', 'images');
    for (const a of images) {
      const img = el('img');
      img.src = a.dataUrl;
      img.alt = a.name;
      row.append(img);
    }
    m.append(row);
  }
  if (text) m.append(el('div', 'text', text));
  scrollDown();
}

/** (Re)draw an assistant message from its state. */
function renderAssistant(view) {
  const { node, text, calls, image } = view;
  node.replaceChildren(node.firstChild); // keep the role line
  const { boxes, points } = findGeometry(text);
  for (const c of calls) {
    const p = clickPoint(c);
    if (p) points.push(p);
  }
  if (image && (boxes.length || points.length)) {
    const sig = JSON.stringify([boxes, points]);
    if (sig !== view.sig) [view.sig, view.figure] = [sig, annotatedImage(image, boxes, points)];
    node.append(view.figure);
  }
  const body = el('div', 'text');
  renderMarkdown(text, body);
  if (view.streaming) body.classList.add('cursor');
  if (text || view.streaming) node.append(body);
  for (const c of calls) node.append(toolCard(c));
  if (view.note) node.append(el('div', 'stopped', view.note));
  scrollDown();
}

function scheduleRender(view) {
  if (view.pending) return;
  view.pending = true;
  requestAnimationFrame(() => {
    view.pending = false;
    renderAssistant(view);
  });
}

// ---------- the API ----------

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = ui.apiKey.value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorText(res) {
  try {
    const j = await res.json();
    return j?.error?.message || j?.error || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status} ${res.statusText}`;
  }
}

/** Yields each parsed `data:` JSON of an SSE response. */
async function* sse(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      yield JSON.parse(data);
    }
  }
}

async function loadModel() {
  try {
    const res = await fetch('/v1/models', { headers: headers() });
    if (res.status === 401) {
      ui.model.textContent = 'API key needed (Settings)';
      return;
    }
    const j = await res.json();
    if (j?.data?.[0]?.id) modelName = String(j.data[0].id);
    ui.model.textContent = modelName;
  } catch {
    ui.model.textContent = '';
  }
}

async function send() {
  if (controller) return;
  const text = ui.prompt.value.trim();
  const images = attachments;
  if (!text && !images.length) return;
  attachments = [];
  renderAttachments();
  ui.prompt.value = '';
  autosize();
  setStatus('');

  renderUser(text, images);
  if (images.length) lastImages = images.map((a) => a.dataUrl);
  const content = images.length
    ? [...images.map((a) => ({ type: 'image_url', image_url: { url: a.dataUrl } })), ...(text ? [{ type: 'text', text }] : [])]
    : text;
  const conv = history; // "New chat" during the answer starts a new array
  conv.push({ role: 'user', content });

  const view = { node: addMessage('assistant'), text: '', calls: [], image: lastImages.at(-1) ?? null, streaming: true, note: '', pending: false, sig: '', figure: null };
  renderAssistant(view);
  controller = new AbortController();
  const signal = controller.signal;
  ui.stop.hidden = false;
  ui.send.hidden = true;
  updateSend();

  const system = ui.system.value.trim();
  const body = {
    model: modelName, stream: true,
    messages: [...(system ? [{ role: 'system', content: system }] : []), ...conv],
    temperature: Number(ui.temperature.value) || 0, max_tokens: Math.max(1, Number(ui.maxTokens.value) || 512),
    ...(ui.clickTool.checked ? { tools: [CLICK_TOOL] } : {}),
  };
  try {
    const res = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal });
    if (!res.ok) throw new Error(await errorText(res));
    for await (const chunk of sse(res)) {
      if (chunk.error) throw new Error(chunk.error.message || String(chunk.error));
      const delta = chunk.choices?.[0]?.delta;
      if (!delta) continue;
      if (typeof delta.content === 'string') view.text += delta.content;
      for (const tc of delta.tool_calls ?? []) {
        const i = tc.index ?? view.calls.length;
        const call = (view.calls[i] ??= { id: tc.id || `call_${i}`, name: '', arguments: '' });
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.name += tc.function.name;
        if (tc.function?.arguments) call.arguments += tc.function.arguments;
      }
      scheduleRender(view);
    }
  } catch (e) {
    if (signal.aborted) view.note = 'stopped';
    else {
      view.note = `error: ${e.message}`;
      view.node.classList.add('error');
    }
  } finally {
    controller = null;
    view.streaming = false;
    view.calls = view.calls.filter(Boolean);
    renderAssistant(view);
    ui.stop.hidden = true;
    ui.send.hidden = false;
    updateSend();
    const answer = { role: 'assistant', content: view.text || (view.calls.length ? null : '') };
    if (view.calls.length) answer.tool_calls = view.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments || '{}' } }));
    if (view.text || view.calls.length) {
      conv.push(answer);
      // the UI only shows tool calls; it answers each so the conversation stays well formed
      for (const c of view.calls) conv.push({ role: 'tool', tool_call_id: c.id, content: 'not executed (the web UI only displays tool calls)' });
    } else conv.pop(); // nothing came back: the question can be asked again
    ui.prompt.focus();
  }
}

// ---------- events ----------

function autosize() {
  ui.prompt.style.height = 'auto';
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight + 2, 200)}px`;
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    if (!ui.send.disabled) void send();
  }
});
ui.prompt.addEventListener('input', () => {
  autosize();
  updateSend();
});
ui.stop.addEventListener('click', () => controller?.abort());
ui.file.addEventListener('change', () => {
  const files = Array.from(ui.file.files || []);
  ui.file.value = '';
  void addFiles(files);
});
ui.clear.addEventListener('click', () => {
  controller?.abort();
  history = [];
  lastImages = [];
  ui.messages.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  ui.prompt.focus();
});

document.addEventListener('paste', (e) => {
  const files = Array.from(e.clipboardData?.items ?? []).filter((i) => i.kind === 'file' && i.type.startsWith('image/')).map((i) => i.getAsFile());
  if (!files.length) return; // text pastes go on as usual
  e.preventDefault();
  void addFiles(files);
});

const hasFiles = (e) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
let dragDepth = 0;
document.addEventListener('dragenter', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth++;
  ui.dropHint.hidden = false;
});
document.addEventListener('dragover', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) ui.dropHint.hidden = true;
});
document.addEventListener('drop', (e) => {
  dragDepth = 0;
  ui.dropHint.hidden = true;
  if (!hasFiles(e)) return;
  e.preventDefault();
  const files = e.dataTransfer.files?.length ? Array.from(e.dataTransfer.files) : Array.from(e.dataTransfer.items ?? []).map((i) => i.getAsFile());
  void addFiles(files);
});

try {
  ui.apiKey.value = sessionStorage.getItem('vista-api-key') || '';
  ui.apiKey.addEventListener('change', () => {
    sessionStorage.setItem('vista-api-key', ui.apiKey.value);
    void loadModel();
  });
} catch {
  // storage may be disabled
}

updateSend();
void loadModel();
ui.prompt.focus();
