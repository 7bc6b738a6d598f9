// The teacher path against a stand-in OpenAI-compatible server on 127.0.0.1: fixed replies (good, malformed
// JSON, contradicting the metadata, wrong schema, absent object, HTTP error, too slow) → only the good one
// comes back, and every drop is counted by reason.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Scene, SceneObject } from '../../src/data/scene.ts';
import { checkTurn, teacherDialogues, teacherPrompt } from '../../src/data/teacher.ts';

const obj = (id: number, shape: string, colour: string, size: string | null, x: number, digit: number | null = null): SceneObject =>
  ({ id, shape, colour, size, digit, rgb: [0, 0, 0], side: 20, outer: [x, 10, x + 20, 30], box: [x, 10, x + 20, 30], box1000: [x * 8, 80, x * 8 + 160, 240] }) as SceneObject;
const sceneWith = (hash: string, extra: SceneObject[] = [], dx = 0): Scene => ({
  width: 128, height: 128, background: { name: 'white', rgb: [255, 255, 255] }, noise: { sigma: 0, blur: false, seed: 1 }, hash,
  objects: [obj(0, 'circle', 'red', 'large', 2), obj(1, 'square', 'blue', 'small', 40 + dx), ...extra],
}) as Scene;

const GOOD = JSON.stringify({ turns: [
  { type: 'count', question: 'How many objects are there?', answer: 'three' },
  { type: 'colour', question: 'What color is the square?', answer: 'Blue.' },
  { type: 'exists', question: 'Is there a green star?', answer: 'no' },
  { type: 'read', question: 'Which number is written?', answer: '7' },
  { type: 'ground', question: 'Where is the red circle?', answer: '[16, 80, 176, 240]' },
] });
const REPLIES: Record<string, { status?: number; delay?: number; content?: string }> = {
  good: { content: '```json\n' + GOOD + '\n```' },
  malformed: { content: '{"turns": [{"type": "count", "question": "How many?", "answer": "2"' },
  contradicts: { content: JSON.stringify({ turns: [{ type: 'count', question: 'How many red objects are there?', answer: '2' }] }) },
  schema: { content: JSON.stringify({ dialogue: [{ q: 'How many objects?', a: '2' }] }) },
  absent: { content: JSON.stringify({ turns: [{ type: 'other', question: 'What is next to the purple triangle?', answer: 'the square' }] }) },
  error: { status: 500 },
  slow: { delay: 1500, content: GOOD },
};
// distinct square positions make each scene's prompt unique, so the server can tell which one it is answering
const scenes = Object.fromEntries(Object.keys(REPLIES).map((k, i) => [k, sceneWith(k, k === 'good' || k === 'slow' ? [obj(2, 'digit', 'black', null, 90, 7)] : [], i)]));

let server: http.Server;
let url = '';
const seen: { auth?: string; model?: string; system?: string }[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const msg = JSON.parse(body) as { model: string; messages: { role: string; content: string }[] };
      seen.push({ auth: req.headers.authorization, model: msg.model, system: msg.messages[0]!.content });
      const key = Object.keys(scenes).find((k) => teacherPrompt(scenes[k]!) === msg.messages[1]!.content)!;
      const r = REPLIES[key]!;
      setTimeout(() => {
        if (r.status) return void res.writeHead(r.status).end('{"error":{"message":"boom"}}');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: r.content }, finish_reason: 'stop' }] }));
      }, r.delay ?? 0);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

describe('teacher', () => {
  test('only the good dialogue is accepted; drops are counted by reason', async () => {
    const samples = Object.keys(REPLIES).map((k) => ({ id: k, image: `images/${k}.png`, scene: scenes[k]! }));
    const { dialogues, stats } = await teacherDialogues({ url: `${url}/`, model: 'stub', apiKey: 'k1', samples, concurrency: 3, timeoutMs: 500 });
    assert.deepEqual(stats, {
      requested: 7, accepted: 1,
      dropped: { non_json: 1, contradiction: 1, schema: 1, absent_object: 1, http: 1, timeout: 1 },
    });
    assert.equal(dialogues.length, 1);
    const d = dialogues[0]!;
    assert.equal(d.image, 'images/good.png');
    assert.equal(d.conversations.length, 10);
    assert.equal(d.conversations[0]!.value, '<image>\nHow many objects are there?');
    assert.equal(d.conversations[1]!.value, 'three');
    assert.ok(seen.every((s) => s.auth === 'Bearer k1' && s.model === 'stub' && s.system!.includes('JSON')));
  });

  test('turn checks against metadata', () => {
    const s = sceneWith('c');
    assert.equal(checkTurn(s, { type: 'count', question: 'How many blue squares are there?', answer: '1' }), null);
    assert.equal(checkTurn(s, { type: 'count', question: 'How many stars?', answer: '0' }), null);
    assert.equal(checkTurn(s, { type: 'exists', question: 'Is there a red circle?', answer: 'No' }), 'contradiction');
    assert.equal(checkTurn(s, { type: 'shape', question: 'What shape is the red object?', answer: 'square' }), 'contradiction');
    assert.equal(checkTurn(s, { type: 'read', question: 'What number is written?', answer: 'none' }), null);
    assert.equal(checkTurn(s, { type: 'colour', question: 'What color is the triangle?', answer: 'red' }), 'absent_object');
    assert.equal(checkTurn(s, { type: 'ground', question: 'Where is the circle?', answer: '[600, 600, 700, 700]' }), 'contradiction');
  });
});
