import { createPublicKey, verify } from 'node:crypto';

/** Verifies an Ed25519 signature with node:crypto, as any RFC 8032 verifier would (hex key and signature). */
export function verifyEd25519(
  publicKeyHex: string,
  message: Uint8Array,
  signature: string | Uint8Array,
): boolean {
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKeyHex, 'hex').toString('base64url') },
    format: 'jwk',
  });
  return verify(
    null,
    message,
    key,
    typeof signature === 'string' ? Buffer.from(signature, 'hex') : signature,
  );
}
