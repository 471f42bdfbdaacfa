import { expect } from 'chai';
import { jsonTextDepth, parseJson, sortKeys } from '../../../src/engine/base/codec.js';
import { SeededRng } from '../../../src/engine/base/rng.js';

/** The bracket depth of JSON text, one character at a time: what jsonTextDepth must agree with. */
function referenceDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') max = Math.max(max, ++depth);
    else if (ch === '}' || ch === ']') depth--;
  }
  return max;
}

describe('codec: JSON text depth', () => {
  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonTextDepth('{"a":"[[[{{{"}')).to.equal(1);
    expect(jsonTextDepth('{"a":"\\"[[["}')).to.equal(1);
    expect(jsonTextDepth('{"a":"\\\\"}')).to.equal(1);
    expect(jsonTextDepth('{"a":"\\\\\\"[["}')).to.equal(1);
    expect(jsonTextDepth('[[["x\\\\",[1]]]]')).to.equal(4);
    expect(jsonTextDepth('[[ "unterminated [[[[')).to.equal(2);
  });

  it('agrees with a character-by-character scan on random text', () => {
    const rng = new SeededRng(7);
    const alphabet = '{}[]"\\ab';
    for (let n = 0; n < 20_000; n++) {
      let text = '';
      const length = rng.int(40);
      for (let i = 0; i < length; i++) text += alphabet[rng.int(alphabet.length)];
      expect(jsonTextDepth(text), JSON.stringify(text)).to.equal(referenceDepth(text));
    }
  });

  it('bounds the depth parseJson accepts', () => {
    const deep = '['.repeat(70) + ']'.repeat(70);
    expect(() => parseJson(deep, { depthMax: 64 })).to.throw(/nested deeper than 64/);
    expect(parseJson('[[["[[[[[[[[[[[["]]]', { depthMax: 3 })).to.deep.equal([[['[[[[[[[[[[[[']]]);
  });
});

describe('codec: sortKeys', () => {
  it('orders keys as Array.prototype.sort does, in place, for few keys and many', () => {
    const rng = new SeededRng(11);
    const alphabet = ['a', 'b', 'B', '_', '1', 'é', '\u{1f600}', 'aa', 'ab', ''];
    for (let n = 0; n < 5_000; n++) {
      const keys = new Set<string>();
      const count = rng.int(24);
      while (keys.size < count)
        keys.add(alphabet[rng.int(alphabet.length)]! + alphabet[rng.int(alphabet.length)]!);
      const input = [...keys];
      const expected = [...input].sort();
      const sorted = sortKeys(input);
      expect(sorted).to.equal(input);
      expect(sorted).to.deep.equal(expected);
    }
  });
});
