import { createHash } from 'node:crypto';

/**
 * What a log entry keeps of a transaction's logical actions (for audit and replay): the actions
 * themselves when their JSON text is at most `inlineMax` characters, else `actionsDigest`, the sha256
 * (base64url) of that text. The text is `JSON.stringify` of the actions as the tail received them:
 * each action's fields in the order the transaction parser builds them (sorted: collection, key, op,
 * value, …), each value as the transaction gave it. An auditor holding the transaction reproduces it
 * from its validated actions (`validateTxRequest`) for that collection. The text is built once and
 * serves both the size check and the digest; a canonical re-encoding (sorting the keys inside every
 * value) cost a transaction of 10,000 puts more than a tenth of its time.
 */
/** Whether a value is such a digest (sha256 in base64url: 43 characters). */
export function isActionsDigest(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value);
}

export function actionsRecord(
  actions: unknown,
  inlineMax: number,
): { readonly actions: unknown } | { readonly actionsDigest: string } {
  const text = JSON.stringify(actions ?? null) ?? 'null';
  if (text.length <= inlineMax) return { actions };
  return { actionsDigest: createHash('sha256').update(text).digest('base64url') };
}
