import { EngineError } from '../base/errors.js';
import { jsonBytes, jsonDepth, parseJson, type Json } from '../base/codec.js';
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
  if (typeof op !== 'string' || !(ops as readonly string[]).includes(op)) {
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
  for (const key of Object.keys(value)) {
    if (key !== 'op' && key !== 'collection' && !allowedFields[kind].includes(key)) {
      throw bad(`action ${index} (${kind}) has unknown field "${key}"`, index);
    }
  }
  const need = (field: string): unknown => {
    if (value[field] === undefined) throw bad(`action ${index} (${kind}) needs "${field}"`, index);
    return value[field];
  };
  const key = (): string => checkKey(need('key'), index);
  const json = (field: string): Json => checkValue(need(field), index);
  const optionalNumber = (field: string, integer: boolean): number | undefined => {
    const v = value[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && (!Number.isInteger(v) || v < 0))) {
      throw bad(
        `action ${index} (${kind}): "${field}" must be ${integer ? 'a non-negative integer' : 'a finite number'}`,
        index,
      );
    }
    return v;
  };
  const optionalBool = (field: string): boolean | undefined => {
    const v = value[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean')
      throw bad(`action ${index} (${kind}): "${field}" must be true or false`, index);
    return v;
  };
  const optionalKey = (field: string): string | undefined =>
    value[field] === undefined ? undefined : checkKey(value[field], index);
  switch (kind) {
    case 'get':
      return { collection, op: 'get', key: key() };
    case 'put':
      return { collection, op: 'put', key: key(), value: json('value') };
    case 'del':
      return { collection, op: 'del', key: key() };
    case 'incr': {
      const path = need('path');
      if (
        typeof path !== 'string' ||
        path.length === 0 ||
        path.split('.').some((part) => part.length === 0)
      ) {
        throw bad(`action ${index} (incr): "path" must be a dotted field name like "balance"`, index);
      }
      const by = need('by');
      if (typeof by !== 'number' || !Number.isFinite(by))
        throw bad(`action ${index} (incr): "by" must be a finite number`, index);
      const min = optionalNumber('min', false);
      const max = optionalNumber('max', false);
      return {
        collection,
        op: 'incr',
        key: key(),
        path,
        by,
        ...(min !== undefined ? { min } : {}),
        ...(max !== undefined ? { max } : {}),
      };
    }
    case 'merge': {
      const merged = json('value');
      if (!isObject(merged)) throw bad(`action ${index} (merge): "value" must be a JSON object`, index);
      return { collection, op: 'merge', key: key(), value: merged };
    }
    case 'append':
      return { collection, op: 'append', value: json('value') };
    case 'read': {
      const from = optionalNumber('from', true);
      const limit = optionalNumber('limit', true);
      const reverse = optionalBool('reverse');
      return {
        collection,
        op: 'read',
        ...(from !== undefined ? { from } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(reverse !== undefined ? { reverse } : {}),
      };
    }
    case 'scan': {
      const from = optionalKey('from');
      const to = optionalKey('to');
      const limit = optionalNumber('limit', true);
      const reverse = optionalBool('reverse');
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
  return /^[A-Za-z0-9._-]{1,128}$/.test(name);
}

export function checkKey(key: unknown, index: number): string {
  if (typeof key !== 'string' || key.length === 0)
    throw bad(`action ${index}: "key" must be a non-empty string`, index);
  if (Buffer.byteLength(key, 'utf8') > limits.keyBytesMax) {
    throw new EngineError('TOO_LARGE', `key is over ${limits.keyBytesMax} bytes`, { action: index });
  }
  return key;
}

export function checkValue(value: unknown, index: number): Json {
  if (jsonDepth(value) > limits.jsonDepthMax) {
    throw new EngineError('TOO_LARGE', `value is nested deeper than ${limits.jsonDepthMax} levels`, {
      action: index,
    });
  }
  if (jsonBytes(value) > limits.valueBytesMax) {
    throw new EngineError('TOO_LARGE', `value is over ${limits.valueBytesMax} bytes`, { action: index });
  }
  return value as Json;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function bad(message: string, action?: number): EngineError {
  return new EngineError('BAD_INPUT', message, action === undefined ? undefined : { action });
}
