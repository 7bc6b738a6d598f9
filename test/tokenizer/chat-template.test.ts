import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/errors.ts';
import { DEFAULT_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from '../../src/tokenizer/index.ts';
import { BPE_MODEL, loadTokenizer } from './helpers.ts';

describe('chat templates', () => {
  it('default ChatML template: roles, image parts as <image>, generation prompt', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] },
      { role: 'assistant', content: 'A cat.' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:' } }, { type: 'text', text: 'And this?' }] },
    ];
    assert.equal(
      renderChatTemplate(DEFAULT_CHAT_TEMPLATE, messages, { addGenerationPrompt: true }),
      '<|im_start|>system\nBe brief.<|im_end|>\n' +
        '<|im_start|>user\n<image>What is this?<|im_end|>\n' +
        '<|im_start|>assistant\nA cat.<|im_end|>\n' +
        '<|im_start|>user\n<image>And this?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });
  it('tools are listed in a system turn', () => {
    const out = renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'user', content: 'hi' }], {
      tools: [{ type: 'function', function: { name: 'get_time' } }],
    });
    assert.match(out, /^<\|im_start\|>system\nYou can call these tools:\n.*get_time.*<\|im_end\|>\n<\|im_start\|>user\nhi<\|im_end\|>\n$/s);
  });
  it('tools are listed one signature per line, in either declaration form', () => {
    const click = {
      type: 'function',
      function: {
        name: 'click', description: 'Click a point.',
        parameters: { type: 'object', properties: { x: { type: 'integer', description: '0-1000' }, y: { type: 'integer' } }, required: ['x', 'y'] },
      },
    };
    const bare = { name: 'find', parameters: { type: 'object', properties: { q: {}, n: { type: ['integer', 'null'] } } } };
    const out = renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 'user', content: 'hi' }], { tools: [click, bare] });
    assert.equal(out, '<|im_start|>system\nYou can call these tools:\nclick(x: integer, y: integer) - Click a point.\nfind(q, n: integer|null)\n<|im_end|>\n' +
      '<|im_start|>user\nhi<|im_end|>\n');
  });
  it('renders HF templates with bos/eos tokens', () => {
    const llama2 =
      "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]{% else %} {{ m.content }}{{ eos_token }}{% endif %}{% endfor %}";
    const out = renderChatTemplate(llama2, [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }], {
      bosToken: '<s>',
      eosToken: '</s>',
    });
    assert.equal(out, '<s>[INST] hi [/INST] yo</s>');
  });
  it('the trained fixture vocabulary carries the default template, and its markers are single tokens', () => {
    const tok = loadTokenizer(BPE_MODEL);
    assert.equal(tok.chatTemplate, DEFAULT_CHAT_TEMPLATE);
    const prompt = renderChatTemplate(tok.chatTemplate!, [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'hi' }] }], {
      addGenerationPrompt: true,
    });
    const ids = tok.encode(prompt, { parseSpecial: true });
    assert.equal(ids[0], tok.tokenId('<|im_start|>'));
    assert.ok(ids.includes(tok.tokenId('<image>')!));
    assert.equal(tok.decode(ids), prompt);
  });
  it('template errors are InputError', () => {
    assert.throws(() => renderChatTemplate('{% if %}', []), InputError);
    assert.throws(() => renderChatTemplate("{{ raise_exception('no system role') }}", []), /no system role/);
    assert.throws(() => renderChatTemplate(DEFAULT_CHAT_TEMPLATE, [{ role: 1 } as unknown as ChatMessage]), InputError);
    // a template that failed to parse fails again (it is not kept), and a good one still renders afterwards
    assert.throws(() => renderChatTemplate('{% if %}', []), /does not parse/);
    assert.equal(renderChatTemplate('{{ messages[0].content }}', [{ role: 'user', content: 'x' }]), 'x');
  });
  it('a template parsed once renders every call from its own variables', () => {
    // parsed templates are reused across calls; nothing of one render may leak into the next
    const t = "{%- set n = messages | length -%}{%- for m in messages -%}{{ m.content }}{%- endfor -%}{{ n }}{{ bos_token }}{{ add_generation_prompt }}";
    assert.equal(renderChatTemplate(t, [{ role: 'user', content: 'a' }], { bosToken: '<s>', addGenerationPrompt: true }), 'a1<s>true');
    assert.equal(renderChatTemplate(t, [{ role: 'user', content: 'b' }, { role: 'user', content: 'c' }]), 'bc2false');
    for (let i = 0; i < 20; i++) renderChatTemplate(`{{ ${i} }}`, []); // more templates than are kept
    assert.equal(renderChatTemplate(t, [{ role: 'user', content: 'd' }]), 'd1false');
  });
});
