import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import type { Certificate } from '../collections/log/log-block.js';
import {
  decisionMessage,
  membershipHash,
  verifyCertificate,
  type Certifier,
  type DecisionFields,
  type Ed25519Identity,
} from './certifier.js';

/**
 * Certifies decisions alone, like SoloCertifier (same certificates, same checks), but can sign on
 * libuv's thread pool. An Ed25519 signature costs tens of microseconds of CPU, a large share of a
 * small transaction's main-thread work: while other transactions are in flight (`offload()` says so)
 * it is taken off the main thread so their work runs beside it; a lone transaction signs inline,
 * since the hop to the pool and back would only add to its latency.
 */
export class OffloadingSoloCertifier implements Certifier {
  /** Certificates this certifier issued in this process (see SoloCertifier.issued). */
  private readonly issued = new WeakSet<Certificate>();
  private readonly key: KeyObject;

  constructor(
    private readonly identity: Ed25519Identity,
    private readonly network: string,
    private readonly offload: () => boolean = () => false,
  ) {
    this.key = createPrivateKey({
      key: Buffer.from(identity.toPkcs8(), 'base64url'),
      format: 'der',
      type: 'pkcs8',
    });
  }

  async certify(
    fields: Omit<DecisionFields, 'network' | 'membership'>,
    members: readonly string[],
  ): Promise<Certificate> {
    const full: DecisionFields = { ...fields, network: this.network, membership: membershipHash(members) };
    const message = decisionMessage(full);
    const signature = this.offload()
      ? await new Promise<string>((resolve, reject) => {
          sign(null, message, this.key, (error, bytes) => {
            if (error !== null) reject(error);
            else resolve(bytes.toString('base64url'));
          });
        })
      : this.identity.sign(message);
    const certificate: Certificate = Object.freeze({
      ...full,
      signatures: Object.freeze([{ member: this.identity.id, signature }]),
    });
    this.issued.add(certificate);
    return certificate;
  }

  verify(certificate: Certificate, members: readonly string[]): boolean {
    if (this.issued.has(certificate)) return certificate.membership === membershipHash(members);
    return certificate.network === this.network && verifyCertificate(certificate, members);
  }
}
