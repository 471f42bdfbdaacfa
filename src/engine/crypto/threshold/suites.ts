import { createFROST, type FROST } from '@noble/curves/abstract/frost.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import { ed25519, ed25519_FROST, ristretto255, ristretto255_FROST } from '@noble/curves/ed25519.js';
import { secp256k1, secp256k1_FROST, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { assert } from '../../base/assert.js';
import { limits } from '../../base/limits.js';
import { concatBytes, equalBytes, utf8 } from '../encoding.js';

/**
 * The groups threshold keys live in, each wrapping a noble FROST ciphersuite (RFC 9591):
 *
 * - `ed25519-sha512`: FROST(Ed25519, SHA-512); group signatures are ordinary Ed25519 signatures.
 * - `secp256k1-sha256`: FROST(secp256k1, SHA-256).
 * - `ristretto255-sha512`: FROST(ristretto255, SHA-512); a prime-order group, used for threshold
 *   decryption and for the static encryption keys of ceremony participants.
 *
 * noble's FROST instances are used as they are for signing. For the ceremony's key generation a
 * second instance is built with the same options and one change: the proof-of-knowledge hash prefix
 * gains the ceremony context, so a proof made for one session never verifies in another.
 */

export const suiteIds = ['ed25519-sha512', 'secp256k1-sha256', 'ristretto255-sha512'] as const;
export type SuiteId = (typeof suiteIds)[number];

export function isSuiteId(value: unknown): value is SuiteId {
  return typeof value === 'string' && (suiteIds as readonly string[]).includes(value);
}

/** The operations the threshold layer needs from a group element; noble's points provide them. */
export interface GroupPoint {
  add(other: GroupPoint): GroupPoint;
  subtract(other: GroupPoint): GroupPoint;
  multiply(scalar: bigint): GroupPoint;
  multiplyUnsafe(scalar: bigint): GroupPoint;
  equals(other: GroupPoint): boolean;
  is0(): boolean;
  toBytes(): Uint8Array;
}

export interface Suite {
  readonly id: SuiteId;
  /** RFC 9591 context string. */
  readonly contextString: string;
  /** noble's FROST instance for this suite. */
  readonly frost: FROST;
  readonly Fn: IField<bigint>;
  readonly base: GroupPoint;
  readonly zero: GroupPoint;
  readonly pointBytes: number;
  readonly scalarBytes: number;
  /** Strict decoding: canonical encoding, on the curve, in the prime-order group, not the identity. */
  decodePoint(bytes: Uint8Array): GroupPoint | undefined;
  encodeScalar(scalar: bigint): Uint8Array;
  /** Canonical scalar (below the group order), or undefined. */
  decodeScalar(bytes: Uint8Array): bigint | undefined;
  /** The suite's hash-to-scalar with an explicit prefix, exactly as its FROST instance hashes. */
  hashToScalar(prefix: Uint8Array, message: Uint8Array): bigint;
  /** noble's serialized identifier for a 1-based participant index. */
  identifier(index: number): string;
  /** FROST instance whose key-generation proofs are bound to `context` (none: the RFC instance). */
  frostFor(context: string | undefined): FROST;
  /** Hash prefix of key-generation proofs of knowledge for a context. */
  proofTag(context: string | undefined): Uint8Array;
}

type NoblePointCons = Parameters<typeof createFROST>[0]['Point'];

interface SuiteDefinition {
  id: SuiteId;
  contextString: string;
  frost: FROST;
  Point: NoblePointCons;
  pointBytes: number;
  hashToScalar(prefix: Uint8Array, message: Uint8Array): bigint;
  decodePoint(bytes: Uint8Array): GroupPoint | undefined;
  /** Options that differ from createFROST's defaults in noble's own instance for this suite. */
  extraOptions: Partial<Parameters<typeof createFROST>[0]>;
  /** Whether decoded points should remember their (costly) prime-order-subgroup check; see `rememberingPoints`. */
  remembersSubgroupChecks?: boolean;
}

/**
 * The point class given to context-bound FROST instances when subgroup checks are costly (Ed25519,
 * a full scalar multiplication each). noble's key-generation rounds decode every commitment several
 * times and check each decoding; here `fromBytes` asks the suite's strict, memoised decoder first,
 * and a point that passed it answers the subgroup check from memory. Bytes the strict decoder refuses
 * go to noble's own decoding and checks unchanged; points from arithmetic are noble's own objects.
 * Instances are proxies over noble's points, so `instanceof` and every method keep working.
 */
function rememberingPoints(
  Point: NoblePointCons,
  decode: (bytes: Uint8Array) => GroupPoint | undefined,
): NoblePointCons {
  const passed = (point: object): object =>
    new Proxy(point, {
      get: (target, key, receiver) =>
        key === 'isTorsionFree' ? () => true : (Reflect.get(target, key, receiver) as unknown),
    });
  const fromBytes = (bytes: Uint8Array, ...rest: unknown[]): unknown => {
    const known = rest.length === 0 || rest[0] === false ? decode(bytes) : undefined;
    return known === undefined
      ? (Point.fromBytes as (...args: unknown[]) => unknown)(bytes, ...rest)
      : passed(known);
  };
  // noble freezes its point class, so the proxy stands on a plain function and forwards to the class.
  const stand = function RememberingPoint(): void {};
  return new Proxy(stand, {
    get: (_target, key) => (key === 'fromBytes' ? fromBytes : (Reflect.get(Point, key) as unknown)),
    has: (_target, key) => Reflect.has(Point, key),
    construct: (_target, args) =>
      Reflect.construct(Point as unknown as new (...a: unknown[]) => object, args),
  }) as unknown as NoblePointCons;
}

function leHashToScalar(Fn: IField<bigint>, hash: (m: Uint8Array) => Uint8Array) {
  return (prefix: Uint8Array, message: Uint8Array): bigint => {
    const digest = hash(concatBytes(prefix, message));
    let value = 0n;
    for (let i = digest.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(digest[i]!);
    return Fn.create(value);
  };
}

function strictDecode(
  decode: () => GroupPoint,
  bytes: Uint8Array,
  extraCheck: (p: GroupPoint) => boolean,
): GroupPoint | undefined {
  try {
    const point = decode();
    if (point.is0() || !equalBytes(point.toBytes(), bytes) || !extraCheck(point)) return undefined;
    return point;
  } catch {
    return undefined;
  }
}

const definitions: Record<SuiteId, () => SuiteDefinition> = {
  'ed25519-sha512': () => {
    const Point = ed25519.Point;
    return {
      id: 'ed25519-sha512',
      contextString: 'FROST-ED25519-SHA512-v1',
      frost: ed25519_FROST,
      Point: Point,
      pointBytes: 32,
      hashToScalar: leHashToScalar(Point.Fn, sha512),
      decodePoint: (bytes) =>
        bytes.length !== 32
          ? undefined
          : strictDecode(
              () => Point.fromBytes(bytes),
              bytes,
              (p) => (p as unknown as InstanceType<typeof Point>).isTorsionFree(),
            ),
      // noble's own instance repeats the subgroup check in a validatePoint hook; createFROST already
      // makes that check on every decoded point, so the context-bound instance leaves the hook out.
      extraOptions: { H2: '' },
      remembersSubgroupChecks: true,
    };
  },
  'secp256k1-sha256': () => {
    const Point = secp256k1.Point;
    return {
      id: 'secp256k1-sha256',
      contextString: 'FROST-secp256k1-SHA256-v1',
      frost: secp256k1_FROST,
      Point: Point,
      pointBytes: 33,
      hashToScalar: (prefix, message) => secp256k1_hasher.hashToScalar(message, { DST: prefix }),
      decodePoint: (bytes) =>
        bytes.length !== 33 || (bytes[0] !== 2 && bytes[0] !== 3)
          ? undefined
          : strictDecode(
              () => Point.fromBytes(bytes),
              bytes,
              () => true,
            ),
      extraOptions: { hashToScalar: (message, options) => secp256k1_hasher.hashToScalar(message, options) },
    };
  },
  'ristretto255-sha512': () => {
    const Point = ristretto255.Point;
    return {
      id: 'ristretto255-sha512',
      contextString: 'FROST-RISTRETTO255-SHA512-v1',
      frost: ristretto255_FROST,
      Point: Point,
      pointBytes: 32,
      hashToScalar: leHashToScalar(Point.Fn, sha512),
      decodePoint: (bytes) =>
        bytes.length !== 32
          ? undefined
          : strictDecode(
              () => Point.fromBytes(bytes),
              bytes,
              () => true,
            ),
      extraOptions: {},
    };
  },
};

/** Proof contexts are short ASCII (session id and attempt), so they go into noble's text prefix unchanged. */
const contextPattern = /^[A-Za-z0-9_.:/-]{1,200}$/;

function buildSuite(def: SuiteDefinition): Suite {
  const Point = def.Point as unknown as { BASE: GroupPoint; ZERO: GroupPoint; Fn: IField<bigint> };
  const Fn = Point.Fn;
  const cache = new Map<string, FROST>();
  const decoded = new Map<string, GroupPoint | null>();
  let frostPoint: NoblePointCons | undefined;
  // Decoding checks subgroup membership, which costs a full scalar multiplication; the same
  // commitments are decoded when responding, judging and finishing, so results are remembered.
  const decodePoint = (bytes: Uint8Array): GroupPoint | undefined => {
    const key = Buffer.from(bytes).toString('base64');
    const known = decoded.get(key);
    if (known !== undefined) return known ?? undefined;
    const point = def.decodePoint(bytes);
    if (decoded.size >= limits.cryptoDecodedPointsCacheEntriesMax)
      decoded.delete(decoded.keys().next().value!);
    decoded.set(key, point ?? null);
    return point;
  };
  const hash = def.id === 'secp256k1-sha256' ? sha256 : sha512;
  const proofTagText = (context: string | undefined): string => {
    if (context === undefined) return `${def.contextString}dkg`;
    assert(contextPattern.test(context), 'a proof context is short ASCII without spaces');
    return `${def.contextString}dkg/optimystic/${context.length}:${context}`;
  };
  const proofTag = (context: string | undefined): Uint8Array => utf8(proofTagText(context));
  return {
    id: def.id,
    contextString: def.contextString,
    frost: def.frost,
    Fn,
    base: Point.BASE,
    zero: Point.ZERO,
    pointBytes: def.pointBytes,
    scalarBytes: Fn.BYTES,
    decodePoint,
    encodeScalar: (scalar) => Fn.toBytes(Fn.create(scalar)),
    decodeScalar: (bytes) => {
      if (bytes.length !== Fn.BYTES) return undefined;
      try {
        return Fn.fromBytes(bytes);
      } catch {
        return undefined;
      }
    },
    hashToScalar: (prefix, message) => def.hashToScalar(prefix, message),
    identifier: (index) => {
      assert(Number.isSafeInteger(index) && index >= 1, 'participant indexes start at 1');
      return def.frost.Identifier.fromNumber(index);
    },
    proofTag,
    frostFor: (context) => {
      if (context === undefined) return def.frost;
      let frost = cache.get(context);
      if (frost === undefined) {
        // Same construction as noble's own instance for this suite, with a context-bound DKG prefix.
        frostPoint ??=
          def.remembersSubgroupChecks === true ? rememberingPoints(def.Point, decodePoint) : def.Point;
        frost = createFROST({
          name: def.contextString,
          Point: frostPoint,
          hash,
          ...def.extraOptions,
          HDKG: proofTagText(context),
        } as Parameters<typeof createFROST>[0]);
        if (cache.size >= limits.ceremonyCacheEntriesMax) cache.delete(cache.keys().next().value!);
        cache.set(context, frost);
      }
      return frost;
    },
  };
}

const built = new Map<SuiteId, Suite>();

export function getSuite(id: SuiteId): Suite {
  let suite = built.get(id);
  if (suite === undefined) {
    suite = buildSuite(definitions[id]());
    built.set(id, suite);
  }
  return suite;
}

// --- scalar and point helpers used by every layer -----------------------------------------------

/** Maps uniformly random bytes (at least 16 more than the scalar size) to a non-zero scalar. */
export function scalarFromRandomBytes(suite: Suite, bytes: Uint8Array): bigint {
  assert(bytes.length >= suite.scalarBytes + 16, 'scalar sampling needs extra bytes to stay unbiased');
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return (value % (suite.Fn.ORDER - 1n)) + 1n;
}

/** Σ points[k]·x^k: the public value of a committed polynomial at x. Variable time; public data only. */
export function evaluateCommitments(suite: Suite, commitments: readonly GroupPoint[], x: bigint): GroupPoint {
  let acc = suite.zero;
  for (let k = commitments.length - 1; k >= 0; k--) acc = acc.multiplyUnsafe(x).add(commitments[k]!);
  return acc;
}

/** Σ coefficients[k]·x^k in the scalar field (Horner). */
export function evaluatePolynomial(suite: Suite, coefficients: readonly bigint[], x: bigint): bigint {
  const { Fn } = suite;
  let acc = Fn.ZERO;
  for (let k = coefficients.length - 1; k >= 0; k--) acc = Fn.add(Fn.mul(acc, x), coefficients[k]!);
  return acc;
}

/** Lagrange coefficient at zero for participant x among xs (distinct, non-zero). */
export function lagrangeAtZero(suite: Suite, xs: readonly bigint[], x: bigint): bigint {
  const { Fn } = suite;
  let numerator = Fn.ONE;
  let denominator = Fn.ONE;
  for (const other of xs) {
    if (other === x) continue;
    numerator = Fn.mul(numerator, other);
    denominator = Fn.mul(denominator, Fn.sub(other, x));
  }
  assert(!Fn.is0(denominator), 'participant identifiers are distinct');
  return Fn.div(numerator, denominator);
}

/** noble's randomness callback, fed from an injected Rng (so tests and vectors are deterministic). */
export function nobleRng(source: {
  bytes(length: number): Uint8Array;
}): (length?: number) => Uint8Array<ArrayBuffer> {
  return (length = 32) => new Uint8Array(source.bytes(length));
}
