import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { canonicalJson } from '../../../src/engine/base/codec.js';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { limits } from '../../../src/engine/base/limits.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { canonicalDigest, jsonLengthAtMost } from '../../../src/engine/collections/log/actions-digest.js';

const reference = (value: unknown): string =>
  createHash('sha256').update(canonicalJson(value)).digest('base64url');

function outcome(run: () => unknown): unknown {
  try {
    return { value: run() };
  } catch (error) {
    return { code: isEngineError(error) ? error.code : String(error) };
  }
}

describe('log entry actions digest', () => {
  it('is the sha256 of the canonical JSON, value for value and error for error', () => {
    const rng = new SeededRng(0xd16e57);
    const keys = ['b', 'a', '10', '2', '__proto__', 'é', '', 'z'];
    const random = (depth: number): unknown => {
      switch (rng.int(depth > 4 ? 5 : 8)) {
        case 0:
          return null;
        case 1:
          return rng.int(2) === 0;
        case 2:
          return [0, -0, 1.5, -7, 1e21, 2 ** 53, 5e-324][rng.int(7)];
        case 3:
          return ['', 'x', 'é', '\ud800', '"q"', 'a\nb'][rng.int(6)];
        case 4:
          return undefined;
        case 5: {
          const out: Record<string, unknown> = {};
          for (let i = rng.int(5); i > 0; i--)
            Object.defineProperty(out, keys[rng.int(keys.length)]!, {
              value: random(depth + 1),
              enumerable: true,
              writable: true,
              configurable: true,
            });
          return out;
        }
        default: {
          const out = Array.from({ length: rng.int(4) }, () => random(depth + 1));
          if (out.length > 2 && rng.int(4) === 0) Reflect.deleteProperty(out, 1); // a hole
          return out;
        }
      }
    };
    for (let i = 0; i < 2000; i++) {
      const value = random(0) ?? null;
      expect(canonicalDigest(value)).to.equal(reference(value));
    }
    let deep: unknown = 1;
    for (let i = 0; i < limits.jsonDepthMax + 20; i++) deep = [deep];
    // Values on which the native encoder differs from canonicalJson (the digest takes a faster path
    // through it when it can): the digest must still follow canonicalJson.
    const bare = Object.create(null) as Record<string, unknown>;
    bare['b'] = 1;
    bare['a'] = [2];
    const cycle: Record<string, unknown> = { a: 1 };
    cycle['self'] = cycle;
    class Point {
      constructor(
        readonly y: number,
        readonly x: number,
      ) {}
    }
    const odd: unknown[] = [
      new Date(0),
      { when: new Date(0) },
      [new Number(1)],
      { b: new Boolean(false) },
      new String('s'),
      { toJSON: () => 'replaced' },
      { a: { toJSON: 'not a method' } },
      bare,
      new Point(1, 2),
      { z: 1, a: { y: [1, { c: 3, b: 2 }], x: null }, '': 0 },
      [{ b: undefined, a: [undefined, 1] }],
      Array.from({ length: 300 }, (_, i) => ({ op: 'put', key: `k${i}`, value: { i, tags: ['a'] } })),
    ];
    for (const value of odd)
      expect(outcome(() => canonicalDigest(value))).to.deep.equal(outcome(() => reference(value)));
    for (const bad of [Number.NaN, [Number.POSITIVE_INFINITY], { f: () => 1 }, 10n, deep, undefined, cycle]) {
      expect(outcome(() => canonicalDigest(bad))).to.deep.equal(outcome(() => reference(bad)));
    }
  });

  it('measures the JSON length without building all of it', () => {
    const actions = Array.from({ length: 50 }, (_, i) => ({
      op: 'put',
      key: `k${i}`,
      value: { i, u: undefined },
    }));
    const length = JSON.stringify(actions).length;
    expect(jsonLengthAtMost(actions, length)).to.equal(true);
    expect(jsonLengthAtMost(actions, length - 1)).to.equal(false);
    expect(jsonLengthAtMost([undefined, () => 1], 11)).to.equal(true); // "[null,null]"
    expect(jsonLengthAtMost([undefined, () => 1], 10)).to.equal(false);
    expect(jsonLengthAtMost({ a: 1 }, 7)).to.equal(true);
    expect(jsonLengthAtMost({ a: 1 }, 6)).to.equal(false);
    expect(jsonLengthAtMost([], 2)).to.equal(true);
  });
});
