/**
 * Base58btc (the Bitcoin alphabet), the text form of libp2p peer ids, and the one peer id shape the
 * engine needs to read without libp2p: an Ed25519 key inlined in an identity multihash
 * (`12D3KooW…`). Consensus members are peer ids, and the layers that verify votes (transactions,
 * consensus) sit below the network layer, so they decode peer ids with this instead.
 */
import { EngineError } from './errors.js';

const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

const digitOf = new Int8Array(128).fill(-1);
for (let i = 0; i < alphabet.length; i++) digitOf[alphabet.charCodeAt(i)] = i;

/** Longest text `base58Decode` accepts by default: decoding is quadratic in the length. */
const decodeCharsMax = 256;

/** Bytes of `text`, or undefined when it is not base58btc (or longer than `charsMax`). Never throws. */
export function base58Decode(text: string, charsMax = decodeCharsMax): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length > charsMax) return undefined;
  let zeros = 0;
  while (zeros < text.length && text.charCodeAt(zeros) === 0x31) zeros++;
  // Little-endian base-256 digits of the number the text spells.
  const bytes: number[] = [];
  for (let i = zeros; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const digit = code < 128 ? digitOf[code]! : -1;
    if (digit < 0) return undefined;
    let carry = digit;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j]! * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[zeros + i] = bytes[bytes.length - 1 - i]!;
  return out;
}

/** The base58btc text of `bytes`. */
export function base58Encode(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  // Little-endian base-58 digits.
  const digits: number[] = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i]!;
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j]! * 256;
      digits[j] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = Math.floor(carry / 58);
    }
  }
  let text = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) text += alphabet[digits[i]!]!;
  return text;
}

/**
 * An Ed25519 peer id's bytes: identity multihash (code 0x00, length 0x24) of the protobuf PublicKey
 * message { Type = Ed25519 (field 1, varint 1), Data = 32 key bytes (field 2, length 0x20) }.
 */
const ed25519PeerIdPrefix = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
const ed25519PeerIdBytes = ed25519PeerIdPrefix.length + 32;

/** The raw 32-byte Ed25519 public key inside an Ed25519 peer id, or undefined for anything else. */
export function ed25519PublicKeyOfPeerId(peerId: string): Uint8Array | undefined {
  // 38 bytes take 52 base58 digits; a shorter or longer text cannot be one.
  if (typeof peerId !== 'string' || peerId.length !== 52) return undefined;
  const bytes = base58Decode(peerId);
  if (bytes?.length !== ed25519PeerIdBytes) return undefined;
  for (let i = 0; i < ed25519PeerIdPrefix.length; i++)
    if (bytes[i] !== ed25519PeerIdPrefix[i]) return undefined;
  return bytes.slice(ed25519PeerIdPrefix.length);
}

/** The peer id (base58btc text) of a raw 32-byte Ed25519 public key, as libp2p writes it. */
export function ed25519PeerId(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new EngineError('BAD_INPUT', 'an Ed25519 public key is 32 bytes');
  const bytes = new Uint8Array(ed25519PeerIdBytes);
  bytes.set(ed25519PeerIdPrefix, 0);
  bytes.set(publicKey, ed25519PeerIdPrefix.length);
  return base58Encode(bytes);
}
