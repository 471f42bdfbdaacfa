/**
 * Validators for untrusted wire messages. A validator takes a parsed JSON value and returns it typed,
 * or throws `BAD_INPUT`; it copies only the fields it knows, so nothing unexpected reaches a handler.
 * Messages are discriminated unions (`{ type: '…' }`): `messageUnion` rejects an unknown `type` with
 * details `{ reason: 'unknown-type' }`, which the request layer answers by resetting the stream.
 */
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';

/** Checks an untrusted value and returns it typed, or throws EngineError('BAD_INPUT'). */
export type Validator<T> = (value: unknown) => T;

/** A validator for a discriminated union of messages; `types` lists the accepted `type` values. */
export interface MessageValidator<T extends { readonly type: string }> extends Validator<T> {
  readonly types: readonly string[];
}

/** The type a validator produces. */
export type Infer<V> = V extends Validator<infer T> ? T : never;

/** Details on the BAD_INPUT thrown for a message whose `type` no case accepts. */
export const unknownTypeReason = 'unknown-type';

/** True for the BAD_INPUT thrown when a message is not an object with a known `type`. */
export function isUnknownTypeError(error: unknown): boolean {
  return (
    error instanceof EngineError &&
    error.code === 'BAD_INPUT' &&
    error.details?.['reason'] === unknownTypeReason
  );
}

function bad(path: string, expected: string): EngineError {
  return new EngineError('BAD_INPUT', `${path || 'message'}: expected ${expected}`, { path });
}

/** Validators know their position in the message so errors can name the bad field. */
type PathValidator<T> = Validator<T> & { readonly at?: (value: unknown, path: string) => T };

function withPath<T>(check: (value: unknown, path: string) => T): PathValidator<T> {
  const validator = ((value: unknown) => check(value, '')) as PathValidator<T>;
  Object.defineProperty(validator, 'at', { value: check });
  return validator;
}

function run<T>(validator: Validator<T>, value: unknown, path: string): T {
  const at = (validator as PathValidator<T>).at;
  return at === undefined ? validator(value) : at(value, path);
}

export interface StringOptions {
  /** Longest accepted string, in UTF-16 code units (default limits.keyBytesMax). */
  charsMax?: number;
  charsMin?: number;
  pattern?: RegExp;
}

export function string(options: StringOptions = {}): Validator<string> {
  const charsMax = options.charsMax ?? limits.keyBytesMax;
  const charsMin = options.charsMin ?? 0;
  return withPath((value, path) => {
    if (typeof value !== 'string') throw bad(path, 'a string');
    if (value.length > charsMax || value.length < charsMin)
      throw bad(path, `a string of ${charsMin}..${charsMax} characters`);
    if (options.pattern !== undefined && !options.pattern.test(value))
      throw bad(path, `a string matching ${String(options.pattern)}`);
    return value;
  });
}

export interface IntegerOptions {
  min?: number;
  max?: number;
}

export function integer(options: IntegerOptions = {}): Validator<number> {
  const min = options.min ?? Number.MIN_SAFE_INTEGER;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return withPath((value, path) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
      throw bad(path, `an integer in ${min}..${max}`);
    return value;
  });
}

export function number(): Validator<number> {
  return withPath((value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(path, 'a finite number');
    return value;
  });
}

export function boolean(): Validator<boolean> {
  return withPath((value, path) => {
    if (typeof value !== 'boolean') throw bad(path, 'a boolean');
    return value;
  });
}

export function literal<const L extends string | number | boolean | null>(expected: L): Validator<L> {
  return withPath((value, path) => {
    if (value !== expected) throw bad(path, JSON.stringify(expected));
    return expected;
  });
}

/** Any JSON value, passed through as is (frames are already bounded in size and depth). */
export function json(): Validator<unknown> {
  return withPath((value) => value);
}

export interface ArrayOptions {
  itemsMax?: number;
}

export function array<T>(item: Validator<T>, options: ArrayOptions = {}): Validator<T[]> {
  const itemsMax = options.itemsMax ?? limits.scanPageItemsMax;
  return withPath((value, path) => {
    if (!Array.isArray(value)) throw bad(path, 'an array');
    if (value.length > itemsMax) throw bad(path, `at most ${itemsMax} items`);
    return value.map((entry, index) => run(item, entry, `${path}[${index}]`));
  });
}

/** Marks a field as optional: absent (or undefined) is accepted and left absent. */
export interface OptionalValidator<T> extends Validator<T | undefined> {
  readonly optional: true;
}

export function optional<T>(inner: Validator<T>): OptionalValidator<T> {
  const validator = withPath((value, path) => (value === undefined ? undefined : run(inner, value, path)));
  Object.defineProperty(validator, 'optional', { value: true });
  return validator as unknown as OptionalValidator<T>;
}

type Shape = Record<string, Validator<unknown>>;

type RequiredKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalValidator<unknown> ? never : K;
}[keyof S];
type OptionalKeys<S extends Shape> = Exclude<keyof S, RequiredKeys<S>>;

export type ObjectOf<S extends Shape> = { [K in RequiredKeys<S>]: Infer<S[K]> } & {
  [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined>;
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** An object with the given fields; unknown fields are dropped, absent optional fields stay absent. */
export function object<S extends Shape>(shape: S): Validator<ObjectOf<S>> {
  const keys = Object.keys(shape);
  return withPath((value, path) => {
    if (!isPlainObject(value)) throw bad(path, 'an object');
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const field = Object.hasOwn(value, key) ? value[key] : undefined;
      const checked = run(shape[key]!, field, path === '' ? key : `${path}.${key}`);
      if (checked !== undefined) out[key] = checked;
    }
    return out as ObjectOf<S>;
  });
}

type Cases = Record<string, Validator<object>>;

/** The union a `messageUnion` produces: each case's fields plus its `type`. */
export type MessageOf<C extends Cases> = {
  [K in keyof C & string]: { readonly type: K } & Infer<C[K]>;
}[keyof C & string];

const typePattern = /^[A-Za-z][A-Za-z0-9_.:-]*$/;

/**
 * A discriminated union: `cases` maps each `type` to the validator of the rest of the message. A value
 * that is not an object with a known string `type` fails with details `{ reason: 'unknown-type' }`.
 */
export function messageUnion<C extends Cases>(cases: C): MessageValidator<MessageOf<C>> {
  const types = Object.keys(cases);
  for (const type of types) {
    if (!typePattern.test(type) || type.length > limits.protocolNameCharsMax)
      throw new EngineError('BAD_INPUT', `message type ${JSON.stringify(type)} is not a plain name`);
  }
  const validator = ((value: unknown) => {
    const type = messageType(value);
    if (type === undefined || !Object.hasOwn(cases, type)) {
      throw new EngineError('BAD_INPUT', `unknown message type ${JSON.stringify(type ?? null)}`, {
        reason: unknownTypeReason,
      });
    }
    const fields = run(cases[type]!, value, '');
    return { ...fields, type } as MessageOf<C>;
  }) as MessageValidator<MessageOf<C>>;
  Object.defineProperty(validator, 'types', { value: Object.freeze([...types]) });
  return validator;
}

/** A request of any type: an object with a plain string `type` (for generic protocols such as `client`). */
export interface AnyMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** Accepts any object whose `type` is a plain name; everything else is an unknown-type error. */
export const anyMessage: Validator<AnyMessage> = (value) => {
  const type = messageType(value);
  if (type === undefined) {
    throw new EngineError('BAD_INPUT', 'message has no plain string type', { reason: unknownTypeReason });
  }
  return value as AnyMessage;
};

/** The `type` of a message, when it is an object whose `type` is a plain name. */
export function messageType(value: unknown): string | undefined {
  if (!isPlainObject(value)) return undefined;
  const type = value['type'];
  if (typeof type !== 'string' || type.length > limits.protocolNameCharsMax || !typePattern.test(type))
    return undefined;
  return type;
}
