import { createHash } from 'node:crypto';
import { Ed25519Identity } from '../../src/engine/transactions/certifier.js';

const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 identity derived from a label: the same label gives the same key in every run. */
export function derivedIdentity(label: string): Ed25519Identity {
  const seed = createHash('sha256').update(`optimystic/sim/identity/${label}`).digest();
  return Ed25519Identity.fromPkcs8(Buffer.concat([pkcs8Prefix, seed]).toString('base64url'));
}

/** `count` identities for a run, sorted by id (a recorded membership is sorted). */
export function derivedMembers(label: string, count: number): Ed25519Identity[] {
  const identities: Ed25519Identity[] = [];
  for (let i = 0; i < count; i++) identities.push(derivedIdentity(`${label}/${i}`));
  return identities.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A block id (32 bytes, base64url) derived from a label. */
export function derivedBlockId(label: string): string {
  return createHash('sha256').update(`optimystic/sim/block/${label}`).digest('base64url');
}

/** The identities and block id of the group simulated under `seed` (members in membership order). */
export function simGroup(seed: number, members: number): { identities: Ed25519Identity[]; blockId: string } {
  return { identities: derivedMembers(`seed-${seed}`, members), blockId: derivedBlockId(`group/${seed}`) };
}
