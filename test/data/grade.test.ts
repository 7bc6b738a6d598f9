// Graders on hand-written cases.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { captionF1, captionMentions, clickInside, exactMatch, gradeItem, iou, normalise, parseBox, parseClick, summarise } from '../../src/data/grade.ts';

describe('graders', () => {
  test('normalisation: case, surrounding punctuation, leading article, number words', () => {
    assert.equal(normalise(' Two.'), '2');
    assert.equal(normalise('The Red!'), 'red');
    assert.equal(normalise('"Yes."'), 'yes');
    assert.equal(normalise('a circle'), 'circle');
    assert.equal(normalise('None'), 'none');
    assert.equal(normalise('zero'), '0');
    assert.equal(exactMatch('Three', '3'), 1);
    assert.equal(exactMatch('3 objects', '3'), 0);
    assert.equal(exactMatch('no', 'yes'), 0);
    assert.equal(exactMatch('An orange.', 'orange'), 1);
  });

  test('caption F1 over {size} {colour} {shape} / digit N mentions', () => {
    const truth = ['large red circle', 'small blue square', 'digit 7'];
    assert.equal(captionF1('A large red circle, a small blue square and the digit 7.', truth), 1);
    assert.equal(captionF1('The digit seven, a small blue square, a large red circle', truth), 1);
    assert.deepEqual(captionMentions('Two small green stars.'), new Set(['small green star']));
    const f = captionF1('A large red circle and a small green square.', truth); // 1 of 2 right, 1 of 3 found
    assert.ok(Math.abs(f - (2 * 1) / (2 + 3)) < 1e-12);
    assert.equal(captionF1('Nothing here.', truth), 0);
    assert.equal(captionF1('', []), 1);
  });

  test('box parsing and IoU', () => {
    assert.deepEqual(parseBox('It is at [100, 200, 300, 400].'), [100, 200, 300, 400]);
    assert.deepEqual(parseBox('(300,400,100,200)'), [100, 200, 300, 400]);
    assert.equal(parseBox('somewhere on the left'), null);
    assert.equal(iou([0, 0, 100, 100], [0, 0, 100, 100]), 1);
    assert.ok(Math.abs(iou([0, 0, 100, 100], [50, 0, 150, 100]) - 1 / 3) < 1e-12);
    assert.equal(iou([0, 0, 10, 10], [20, 20, 30, 30]), 0);
    const g = gradeItem({ task: 'ground', answer: '[0, 0, 100, 100]', box: [0, 0, 100, 100] }, '[50, 0, 150, 100]');
    assert.ok(Math.abs(g.iou! - 1 / 3) < 1e-12);
    assert.equal(gradeItem({ task: 'ground', answer: '', box: [0, 0, 100, 100] }, 'no idea').score, 0);
  });

  test('click: point inside the box from several tool-call shapes; malformed → 0', () => {
    const box = [100, 100, 300, 300] as [number, number, number, number];
    assert.equal(clickInside({ name: 'click', arguments: { x: 200, y: 150 } }, box), 1);
    assert.equal(clickInside({ function: { name: 'click', arguments: '{"x":100,"y":300}' } }, box), 1);
    assert.equal(clickInside({ tool_calls: [{ type: 'function', function: { name: 'click', arguments: '{"x":50,"y":150}' } }] }, box), 0);
    assert.equal(clickInside('click({"x": 250, "y": 250})', box), 1);
    assert.equal(clickInside('<tool_call>{"name":"click","arguments":{"x":120,"y":130}}</tool_call>', box), 1);
    assert.equal(clickInside('The circle is at [100, 100, 300, 300].', box), 0);
    assert.equal(clickInside({ name: 'click', arguments: '{"x": 200' }, box), 0);
    assert.equal(clickInside({ name: 'tap', arguments: { x: 200, y: 200 } }, box), 0);
    assert.equal(parseClick({ name: 'click', arguments: { x: 200.5, y: 200 } }), null);
    assert.equal(parseClick({ name: 'click', arguments: { x: 2000, y: 200 } }), null);
    assert.equal(gradeItem({ task: 'click', answer: '', box }, { text: '', toolCall: { name: 'click', arguments: { x: 200, y: 200 } } }).score, 1);
  });

  test('summary per task, with ground IoU mean and share ≥ 0.5', () => {
    const s = summarise([
      { task: 'count', score: 1 }, { task: 'count', score: 0 },
      { task: 'ground', score: 0.8, iou: 0.8 }, { task: 'ground', score: 0.2, iou: 0.2 },
    ]);
    assert.deepEqual(s.count, { n: 2, score: 0.5 });
    assert.ok(Math.abs(s.ground!.iouMean! - 0.5) < 1e-12);
    assert.equal(s.ground!.iouAt50, 0.5);
  });
});
