import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import {
  anyMessage,
  array,
  integer,
  isUnknownTypeError,
  messageUnion,
  object,
  optional,
  string,
} from '../../../src/engine/network/schema.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return expect.fail('expected a throw');
}

describe('network message schemas', () => {
  const message = messageUnion({
    get: object({ key: string({ charsMax: 8 }), limit: optional(integer({ min: 1, max: 10 })) }),
    put: object({ key: string(), values: array(integer(), { itemsMax: 3 }) }),
  });

  it('accepts each known type and keeps only the declared fields', () => {
    expect(message({ type: 'get', key: 'k', extra: 'dropped' })).to.deep.equal({ type: 'get', key: 'k' });
    expect(message({ type: 'get', key: 'k', limit: 5 })).to.deep.equal({ type: 'get', key: 'k', limit: 5 });
    expect(message({ type: 'put', key: 'k', values: [1, 2] })).to.deep.equal({
      type: 'put',
      key: 'k',
      values: [1, 2],
    });
    expect(message.types).to.deep.equal(['get', 'put']);
  });

  it('rejects unknown, missing and non-string types as unknown-type errors', () => {
    for (const value of [
      { type: 'delete', key: 'k' },
      { key: 'k' },
      { type: 7 },
      'get',
      null,
      [],
      { type: '__proto__' },
      { type: 'toString' },
    ]) {
      const error = thrown(() => message(value));
      expect(isUnknownTypeError(error), JSON.stringify(value)).to.equal(true);
    }
  });

  it('rejects bad fields of a known type with BAD_INPUT naming the field', () => {
    const cases: Array<[unknown, string]> = [
      [{ type: 'get' }, 'key'],
      [{ type: 'get', key: 'too long a key' }, 'key'],
      [{ type: 'get', key: 'k', limit: 0 }, 'limit'],
      [{ type: 'get', key: 'k', limit: 1.5 }, 'limit'],
      [{ type: 'put', key: 'k', values: [1, 2, 3, 4] }, 'values'],
      [{ type: 'put', key: 'k', values: [1, 'two'] }, 'values[1]'],
    ];
    for (const [value, path] of cases) {
      const error = thrown(() => message(value));
      expect(isEngineError(error, 'BAD_INPUT')).to.equal(true);
      expect(isUnknownTypeError(error)).to.equal(false);
      expect((error as { details: { path: string } }).details.path).to.equal(path);
    }
  });

  it('accepts any object with a plain type for generic protocols', () => {
    expect(anyMessage({ type: 'collection.get', name: 'x' })).to.deep.equal({
      type: 'collection.get',
      name: 'x',
    });
    expect(isUnknownTypeError(thrown(() => anyMessage({ type: 'has space' })))).to.equal(true);
    expect(isUnknownTypeError(thrown(() => anyMessage({ type: 'x'.repeat(65) })))).to.equal(true);
  });
});
