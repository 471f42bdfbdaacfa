/** The crypto layer: identity keys, sealing at rest, and threshold keys. Pure: no I/O, no clock. */
export {
  Identity,
  generateIdentity,
  domainMessage,
  verifySignature,
  verifyDomain,
  isValidIdentityKey,
  encodePublicKey,
  decodePublicKey,
  encodeSignature,
  decodeSignature,
  encodeSecretKey,
  decodeSecretKey,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
  identityKeyBytes,
  identitySignatureBytes,
} from './identity.js';
export {
  sealWithPassphrase,
  openWithPassphrase,
  isSealedEnvelope,
  sealedFormat,
  type SealedEnvelope,
  type SealOptions,
} from './seal.js';
export { toBase64Url, fromBase64Url, toHex, fromHex } from './encoding.js';
export { bip340PublicKey, signBip340, verifyBip340 } from './bip340.js';
export * from './threshold/index.js';
