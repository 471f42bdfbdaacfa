import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { jsonDepth } from '../../../src/engine/base/codec.js';
import { limits } from '../../../src/engine/base/limits.js';
import { checkValue, parseTxLine, validateTxRequest } from '../../../src/engine/transactions/tx-parse.js';

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
    return undefined;
  } catch (error) {
    return isEngineError(error) ? error.code : 'NOT_AN_ENGINE_ERROR';
  }
}

/** A value whose jsonDepth is `depth`: arrays nested `depth` deep around a number. */
function nested(depth: number, inner: unknown = 1): unknown {
  let value = inner;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('transaction parsing', () => {
  it('accepts every op with its fields and keeps the actions in order', () => {
    const request = validateTxRequest({
      actions: [
        { collection: 'a', op: 'get', key: 'k' },
        { collection: 'a', op: 'put', key: 'k', value: { x: [1, 'two'] } },
        { collection: 'a', op: 'del', key: 'k' },
        { collection: 'a', op: 'incr', key: 'k', path: 'n.m', by: -2, min: 0, max: 9 },
        { collection: 'a', op: 'merge', key: 'k', value: { y: null } },
        { collection: 'b', op: 'append', value: 'e' },
        { collection: 'b', op: 'read', from: 3, limit: 2, reverse: true },
        { collection: 'a', op: 'scan', from: 'a', to: 'z', limit: 5, reverse: false },
      ],
      expect: [{ collection: 'a', key: 'k', exists: true }],
    });
    expect(request.actions.map((action) => action.op)).to.deep.equal([
      'get',
      'put',
      'del',
      'incr',
      'merge',
      'append',
      'read',
      'scan',
    ]);
    expect(request.actions[3]).to.deep.equal({
      collection: 'a',
      op: 'incr',
      key: 'k',
      path: 'n.m',
      by: -2,
      min: 0,
      max: 9,
    });
    expect(request.expect).to.deep.equal([{ collection: 'a', key: 'k', exists: true }]);
  });

  it('takes an incr without a path (the value is the counter) and refuses a path that names no field', () => {
    const request = validateTxRequest({ actions: [{ collection: 'a', op: 'incr', key: 'hits', by: 1 }] });
    expect(request.actions[0]).to.deep.equal({ collection: 'a', op: 'incr', key: 'hits', by: 1 });
    for (const path of ['', '.', 'a.', 7, null]) {
      const code = codeOf(() =>
        validateTxRequest({ actions: [{ collection: 'a', op: 'incr', key: 'k', path, by: 1 }] }),
      );
      expect(code, JSON.stringify(path)).to.equal('BAD_INPUT');
    }
    expect(
      codeOf(() => validateTxRequest({ actions: [{ collection: 'a', op: 'incr', key: 'k', path: 'n' }] })),
    ).to.equal('BAD_INPUT');
  });

  it('refuses unknown ops and fields, missing fields and bad collection names, naming the action', () => {
    const cases: unknown[] = [
      { collection: 'a', op: 'upsert', key: 'k' },
      { collection: 'a', op: 'get', key: 'k', value: 1 },
      { collection: 'a', op: 'put', key: 'k' },
      { collection: 'a b', op: 'get', key: 'k' },
      { collection: 'a', op: 'get', key: '' },
      { collection: 'a', op: 'read', limit: -1 },
      { collection: 'a', op: 'scan', reverse: 'yes' },
      { collection: 'a', op: 'incr', key: 'k', path: 'a..b', by: 1 },
      { collection: 'a', op: 'merge', key: 'k', value: [1] },
      { collection: 'a', op: 'get', key: 'k', constructor: 1 },
    ];
    for (const action of cases) {
      try {
        validateTxRequest({ actions: [{ collection: 'a', op: 'get', key: 'ok' }, action] });
        expect.fail(`accepted ${JSON.stringify(action)}`);
      } catch (error) {
        expect(isEngineError(error, 'BAD_INPUT'), String(error)).to.equal(true);
        expect((error as { details?: { action?: number } }).details?.action).to.equal(1);
      }
    }
  });

  it('bounds value depth exactly at jsonDepthMax, whatever the text looks like', () => {
    const max = limits.jsonDepthMax;
    expect(codeOf(() => checkValue(nested(max), 0))).to.equal(undefined);
    expect(codeOf(() => checkValue(nested(max + 1), 0))).to.equal('TOO_LARGE');
    // An empty array at the bottom has one more bracket level than value depth: still allowed.
    const emptyAtBottom = nested(max, []);
    expect(jsonDepth(emptyAtBottom)).to.equal(max);
    expect(codeOf(() => checkValue(emptyAtBottom, 0))).to.equal(undefined);
    expect(codeOf(() => checkValue(nested(max - 1, { a: [] }), 0))).to.equal(undefined);
    expect(codeOf(() => checkValue(nested(max, { a: 1 }), 0))).to.equal('TOO_LARGE');
    // Brackets inside strings do not count.
    expect(codeOf(() => checkValue({ s: '['.repeat(4 * max) }, 0))).to.equal(undefined);
    // So deep that encoding it would exhaust the stack.
    expect(codeOf(() => checkValue(nested(200_000), 0))).to.equal('TOO_LARGE');
  });

  it('bounds value size in UTF-8 bytes, not characters', () => {
    const max = limits.valueBytesMax;
    // JSON text of a string is the string plus two quotes.
    expect(codeOf(() => checkValue('a'.repeat(max - 2), 0))).to.equal(undefined);
    expect(codeOf(() => checkValue('a'.repeat(max - 1), 0))).to.equal('TOO_LARGE');
    const threeByteChars = Math.floor((max - 2) / 3);
    expect(codeOf(() => checkValue('€'.repeat(threeByteChars), 0))).to.equal(undefined);
    expect(codeOf(() => checkValue('€'.repeat(threeByteChars + 1), 0))).to.equal('TOO_LARGE');
  });

  it('refuses values that are not JSON with BAD_INPUT, not a crash', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(codeOf(() => checkValue(cyclic, 0))).to.equal('BAD_INPUT');
    expect(codeOf(() => checkValue({ n: 10n }, 0))).to.equal('BAD_INPUT');
  });

  it('bounds key size in UTF-8 bytes', () => {
    const max = limits.keyBytesMax;
    const line = (key: string): string => JSON.stringify({ actions: [{ collection: 'a', op: 'get', key }] });
    expect(codeOf(() => parseTxLine(line('k'.repeat(max))))).to.equal(undefined);
    expect(codeOf(() => parseTxLine(line('k'.repeat(max + 1))))).to.equal('TOO_LARGE');
    expect(codeOf(() => parseTxLine(line('€'.repeat(Math.floor(max / 3)))))).to.equal(undefined);
    expect(codeOf(() => parseTxLine(line('€'.repeat(Math.floor(max / 3) + 1))))).to.equal('TOO_LARGE');
  });
});
