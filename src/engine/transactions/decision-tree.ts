import { createHash } from 'node:crypto';
import { canonicalJson } from '../base/codec.js';
import type { CertificateBatch } from '../collections/log/log-block.js';

/**
 * A Merkle tree over the decision messages of one batch, so one signature certifies them all and each
 * certificate still verifies alone: it carries the signature over the root and its decision's audit
 * path. The tree is RFC 6962's (Certificate Transparency) Merkle Tree Hash: a leaf is
 * SHA-256(0x00 ‖ message), an inner node SHA-256(0x01 ‖ left ‖ right), and a batch of n splits at the
 * largest power of two below n, so no leaf is duplicated and a path names no empty sibling. The 0x00
 * and 0x01 prefixes keep a leaf from passing for an inner node.
 */

const batchDomain = 'optimystic/decision-batch/v1';

/** The message a batch signature covers: the root and the batch size, domain-separated. */
export function batchRootMessage(root: Buffer, size: number): Buffer {
  return Buffer.from(canonicalJson({ domain: batchDomain, root: root.toString('base64url'), size }));
}

function leafHash(message: Uint8Array): Buffer {
  return createHash('sha256').update(leafPrefix).update(message).digest();
}

function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(nodePrefix).update(left).update(right).digest();
}

const leafPrefix = Buffer.from([0]);
const nodePrefix = Buffer.from([1]);

/** The largest power of two strictly below n (n ≥ 2). */
function splitOf(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The root of a batch of messages and the audit path of each one. */
export function batchTree(messages: readonly Uint8Array[]): { root: Buffer; paths: CertificateBatch[] } {
  const size = messages.length;
  const paths = messages.map((): string[] => []);
  const build = (from: number, to: number): Buffer => {
    if (to - from === 1) return leafHash(messages[from]!);
    const mid = from + splitOf(to - from);
    const left = build(from, mid);
    const right = build(mid, to);
    // Every leaf on one side takes the other side's root as its next sibling up.
    const leftText = left.toString('base64url');
    const rightText = right.toString('base64url');
    for (let i = from; i < mid; i++) paths[i]!.push(rightText);
    for (let i = mid; i < to; i++) paths[i]!.push(leftText);
    return nodeHash(left, right);
  };
  const root = build(0, size);
  return { root, paths: paths.map((path, index) => ({ index, size, path })) };
}

/**
 * The root a decision message and its audit path lead to, or undefined when the path cannot be one of
 * a batch of that size (RFC 9162 §2.1.3.2, "verifying an inclusion proof").
 */
export function rootOfPath(message: Uint8Array, batch: CertificateBatch): Buffer | undefined {
  const { index, size, path } = batch;
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(index) || index < 0 || index >= size)
    return undefined;
  if (!Array.isArray(path) || path.length > 64) return undefined;
  let fn = index;
  let sn = size - 1;
  let hash = leafHash(message);
  for (const text of path) {
    if (typeof text !== 'string' || sn === 0) return undefined;
    const sibling = Buffer.from(text, 'base64url');
    if (sibling.length !== 32) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      hash = nodeHash(sibling, hash);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      hash = nodeHash(hash, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? hash : undefined;
}
