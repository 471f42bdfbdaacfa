import { EngineError } from '../base/errors.js';
import { jsonDepth, jsonTextDepth, parseJson, type Json } from '../base/codec.js';
import { limits } from '../base/limits.js';
import type { Action, ActionOp, Expectation, TxRequest } from './tx-types.js';

/**
 * Parses and validates one `tx` input line (SPEC §2.2). Throws EngineError BAD_INPUT or TOO_LARGE;
 * `details.action` names the offending action index (-1 for `expect`).
 */
export function parseTxLine(line: string): TxRequest {
  if (hasBinary(line)) {
    throw new EngineError(
      'BAD_INPUT',
      'transaction line contains binary data; expected one JSON object per line',
    );
  }
  const parsed = parseJson(line, { bytesMax: limits.txLineBytesMax, what: 'transaction line' });
  return validateTxRequest(parsed);
}

/** Control characters other than tab, newline and carriage return never occur in JSON text lines. */
function hasBinary(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const code = line.charCodeAt(i);
    if (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return true;
  }
  return false;
}

const ops: readonly ActionOp[] = ['get', 'put', 'del', 'incr', 'merge', 'append', 'read', 'scan'];
const readingOps: ReadonlySet<ActionOp> = new Set<ActionOp>(['get', 'read', 'scan']);
/** The ops that change the database: every op but the reading ones. */
export const writingOps: ReadonlySet<string> = new Set(ops.filter((op) => !readingOps.has(op)));
const allowedFields: Readonly<Record<ActionOp, readonly string[]>> = {
  get: ['key'],
  put: ['key', 'value'],
  del: ['key'],
  incr: ['key', 'path', 'by', 'min', 'max'],
  merge: ['key', 'value'],
  append: ['value'],
  read: ['from', 'limit', 'reverse'],
  scan: ['from', 'to', 'limit', 'reverse'],
};

/** Validates the shape of a transaction request (from a `tx` line or an API caller). */
export function validateTxRequest(value: unknown): TxRequest {
  if (!isObject(value)) throw bad('a transaction must be a JSON object with an "actions" array');
  for (const key of Object.keys(value)) {
    if (key !== 'actions' && key !== 'expect')
      throw bad(`unknown field "${key}" in transaction (expected "actions" and optional "expect")`);
  }
  const actions = value['actions'];
  if (!Array.isArray(actions) || actions.length === 0) throw bad('"actions" must be a non-empty array');
  if (actions.length > limits.actionsPerTransactionMax) {
    throw new EngineError(
      'TOO_LARGE',
      `a transaction may hold at most ${limits.actionsPerTransactionMax} actions`,
    );
  }
  const validated = actions.map((action, index) => validateAction(action, index));
  const expect = value['expect'];
  let expectations: Expectation[] | undefined;
  if (expect !== undefined) {
    if (!Array.isArray(expect)) throw bad('"expect" must be an array', -1);
    expectations = expect.map((item) => validateExpectation(item));
  }
  return expectations === undefined ? { actions: validated } : { actions: validated, expect: expectations };
}

function validateAction(value: unknown, index: number): Action {
  if (!isObject(value)) throw bad(`action ${index} must be a JSON object`, index);
  const op = value['op'];
  if (typeof op !== 'string' || !Object.hasOwn(allowedFields, op)) {
    throw bad(
      `action ${index} has unknown op ${JSON.stringify(op)} (expected one of ${ops.join(', ')})`,
      index,
    );
  }
  const kind = op as ActionOp;
  const collection = value['collection'];
  if (typeof collection !== 'string' || !isCollectionName(collection)) {
    throw bad(`action ${index} needs a "collection" name (letters, digits, . _ -; 1-128 characters)`, index);
  }
  const allowed = allowedFields[kind];
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (key !== 'op' && key !== 'collection' && !allowed.includes(key)) {
      throw bad(`action ${index} (${kind}) has unknown field "${key}"`, index);
    }
  }
  // Plain helpers rather than closures: a transaction may carry 10,000 actions. Members are created
  // in sorted order (collection, key, op, value), as canonicalJson writes them: the digest a log entry
  // keeps of large actions (collections/log/actions-digest.ts) encodes them in that order.
  switch (kind) {
    case 'get':
      return { collection, key: requiredKey(value, index, kind), op: 'get' };
    case 'put':
      // The value is checked where it is stored: the tree copies it into canonical form, measuring its
      // size and depth as it goes, and refuses it (TOO_LARGE, BAD_INPUT) before the transaction writes
      // anything (tree.put: the same bounds as checkValue). Checking it here too cost a second pass
      // over every value (10,000 puts: about a third of the parse).
      return {
        collection,
        key: requiredKey(value, index, kind),
        op: 'put',
        value: required(value, 'value', index, kind) as Json,
      };
    case 'del':
      return { collection, key: requiredKey(value, index, kind), op: 'del' };
    case 'incr': {
      // No path: the value itself is the number.
      const path = value['path'];
      if (
        path !== undefined &&
        (typeof path !== 'string' || path.length === 0 || path.split('.').some((part) => part.length === 0))
      ) {
        throw bad(`action ${index} (incr): "path" must be a dotted field name like "balance"`, index);
      }
      const by = required(value, 'by', index, kind);
      if (typeof by !== 'number' || !Number.isFinite(by))
        throw bad(`action ${index} (incr): "by" must be a finite number`, index);
      const min = optionalNumber(value, 'min', false, index, kind);
      const max = optionalNumber(value, 'max', false, index, kind);
      return {
        collection,
        op: 'incr',
        key: requiredKey(value, index, kind),
        ...(path !== undefined ? { path } : {}),
        by,
        ...(min !== undefined ? { min } : {}),
        ...(max !== undefined ? { max } : {}),
      };
    }
    case 'merge': {
      const merged = checkValue(required(value, 'value', index, kind), index);
      if (!isObject(merged)) throw bad(`action ${index} (merge): "value" must be a JSON object`, index);
      return { collection, key: requiredKey(value, index, kind), op: 'merge', value: merged };
    }
    case 'append':
      return { collection, op: 'append', value: checkValue(required(value, 'value', index, kind), index) };
    case 'read': {
      const from = optionalNumber(value, 'from', true, index, kind);
      const limit = optionalNumber(value, 'limit', true, index, kind);
      const reverse = optionalBool(value, 'reverse', index, kind);
      return {
        collection,
        op: 'read',
        ...(from !== undefined ? { from } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(reverse !== undefined ? { reverse } : {}),
      };
    }
    case 'scan': {
      const from = value['from'] === undefined ? undefined : checkKey(value['from'], index);
      const to = value['to'] === undefined ? undefined : checkKey(value['to'], index);
      const limit = optionalNumber(value, 'limit', true, index, kind);
      const reverse = optionalBool(value, 'reverse', index, kind);
      return {
        collection,
        op: 'scan',
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(reverse !== undefined ? { reverse } : {}),
      };
    }
  }
}

function required(value: Record<string, unknown>, field: string, index: number, kind: ActionOp): unknown {
  const found = value[field];
  if (found === undefined) throw bad(`action ${index} (${kind}) needs "${field}"`, index);
  return found;
}

function requiredKey(value: Record<string, unknown>, index: number, kind: ActionOp): string {
  return checkKey(required(value, 'key', index, kind), index);
}

function optionalNumber(
  value: Record<string, unknown>,
  field: string,
  integer: boolean,
  index: number,
  kind: ActionOp,
): number | undefined {
  const v = value[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && (!Number.isInteger(v) || v < 0))) {
    throw bad(
      `action ${index} (${kind}): "${field}" must be ${integer ? 'a non-negative integer' : 'a finite number'}`,
      index,
    );
  }
  return v;
}

function optionalBool(
  value: Record<string, unknown>,
  field: string,
  index: number,
  kind: ActionOp,
): boolean | undefined {
  const v = value[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(`action ${index} (${kind}): "${field}" must be true or false`, index);
  return v;
}

function validateExpectation(value: unknown): Expectation {
  if (!isObject(value)) throw bad('each "expect" entry must be a JSON object', -1);
  for (const key of Object.keys(value)) {
    if (!['collection', 'key', 'exists', 'value'].includes(key))
      throw bad(`unknown field "${key}" in "expect"`, -1);
  }
  const collection = value['collection'];
  if (typeof collection !== 'string' || !isCollectionName(collection))
    throw bad('"expect" entries need a "collection" name', -1);
  const key = checkKey(value['key'], -1);
  const exists = value['exists'];
  if (exists !== undefined && typeof exists !== 'boolean')
    throw bad('"exists" in "expect" must be true or false', -1);
  if (exists === undefined && value['value'] === undefined)
    throw bad('"expect" entries need "exists" or "value"', -1);
  const expected: Expectation = { collection, key, ...(exists !== undefined ? { exists } : {}) };
  return value['value'] === undefined ? expected : { ...expected, value: checkValue(value['value'], -1) };
}

export function isCollectionName(name: string): boolean {
  // The actions of one transaction usually name one collection: remember the last name that passed.
  if (name === lastCollectionName) return true;
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) return false;
  lastCollectionName = name;
  return true;
}

let lastCollectionName = '';

export function checkKey(key: unknown, index: number): string {
  if (typeof key !== 'string' || key.length === 0)
    throw bad(`action ${index}: "key" must be a non-empty string`, index);
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so short keys need no byte count.
  if (key.length * 3 > limits.keyBytesMax && Buffer.byteLength(key, 'utf8') > limits.keyBytesMax) {
    throw new EngineError('TOO_LARGE', `key is over ${limits.keyBytesMax} bytes`, { action: index });
  }
  return key;
}

/**
 * A value within limits.jsonDepthMax and limits.valueBytesMax. Encoded once (JSON.stringify, native);
 * the depth is then read off the text, and only a text that could be too deep (it has more brackets
 * than the limit) is measured on the value itself.
 */
export function checkValue(value: unknown, index: number): Json {
  let text: string;
  try {
    // undefined (a value that is not there, as from an API caller) encodes to nothing.
    const encoded: string | undefined = JSON.stringify(value);
    text = encoded ?? '';
  } catch (error) {
    // A cycle, a BigInt, or nesting deep enough to exhaust the stack.
    if (error instanceof RangeError) throw tooDeep(index);
    throw new EngineError('BAD_INPUT', `value is not a JSON value`, { action: index }, { cause: error });
  }
  const length = text.length;
  // A value nested d levels deep has at least d opening brackets, so 2d characters.
  if (length > 2 * limits.jsonDepthMax && jsonTextDepth(text) > limits.jsonDepthMax) {
    if (jsonDepth(value) > limits.jsonDepthMax) throw tooDeep(index);
  }
  if (length * 3 > limits.valueBytesMax && Buffer.byteLength(text, 'utf8') > limits.valueBytesMax) {
    throw new EngineError('TOO_LARGE', `value is over ${limits.valueBytesMax} bytes`, { action: index });
  }
  return value as Json;
}

function tooDeep(index: number): EngineError {
  return new EngineError('TOO_LARGE', `value is nested deeper than ${limits.jsonDepthMax} levels`, {
    action: index,
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function bad(message: string, action?: number): EngineError {
  return new EngineError('BAD_INPUT', message, action === undefined ? undefined : { action });
}
