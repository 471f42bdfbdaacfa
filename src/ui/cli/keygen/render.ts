import type {
  ApprovalRequest,
  CeremonyNetEvent,
  CeremonyProgress,
  CeremonySummary,
  DecryptProgress,
  KeySummary,
  SignProgress,
} from '../../../engine/index.js';

/** Human text for keygen commands: approval prompts and progress lines. Peers show as `…` + tail. */

export function shortPeer(peerId: string): string {
  return `…${peerId.slice(-10)}`;
}

function peers(list: readonly string[]): string {
  return list.map(shortPeer).join(', ');
}

export function describeCeremony(s: CeremonySummary): string {
  const what = s.kind === 'dkg' ? 'new key' : `${s.kind} of key ${s.priorKeyId ?? '?'}`;
  const label = s.label === '' ? '' : `, "${s.label}"`;
  return `${what}, ${s.suite}, ${s.threshold} of ${s.recipients}, for ${s.purpose}${label}`;
}

function printable(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  return /^[^\u0000-\u0008\u000b-\u001f\u007f]*$/.test(text) ? text : undefined;
}

export function approvalLines(request: ApprovalRequest, nowMs: number): string[] {
  switch (request.kind) {
    case 'ceremony': {
      const s = request.ceremony;
      const minutes = Math.max(0, Math.round((s.expiresAtMs - nowMs) / 60_000));
      const lines = [
        `Ceremony ${s.tag} proposed by ${s.proposer}:`,
        `  what       ${describeCeremony(s)}`,
        `  session    ${s.session}`,
        `  expires    ${new Date(s.expiresAtMs).toISOString()} (in ${Math.floor(minutes / 60)}h ${minutes % 60}m)`,
      ];
      if (s.priorThreshold !== null && s.priorThreshold !== s.threshold)
        lines.push(`  threshold  changes from ${s.priorThreshold} to ${s.threshold}`);
      lines.push('  members');
      for (const m of s.members) {
        const roles = [m.deals ? 'deals' : '', m.receives ? 'receives a share' : 'receives no share']
          .filter((r) => r !== '')
          .join(', ');
        lines.push(`    ${m.peerId}  ${roles}${m.you ? '  (you)' : ''}`);
      }
      return lines;
    }
    case 'sign': {
      const text = printable(request.message);
      const lines = [
        `Signing request ${request.request} for key ${request.keyId}${request.label === '' ? '' : ` ("${request.label}")`}:`,
        `  message    ${request.message.length} bytes`,
      ];
      if (text !== undefined && text.length <= 2000) lines.push(...text.split('\n').map((l) => `  | ${l}`));
      else
        lines.push(
          `  hex        ${Buffer.from(request.message.subarray(0, 64)).toString('hex')}${request.message.length > 64 ? '…' : ''}`,
        );
      return lines;
    }
    case 'decrypt':
      return [
        `Decryption request ${request.request} for key ${request.keyId}${request.label === '' ? '' : ` ("${request.label}")`}:`,
        `  requester  ${request.requester ?? 'unknown (no ceremony identity)'}`,
        `  ciphertext about ${request.ciphertextBytes} bytes, sha256 ${request.ciphertextDigest}`,
        '  note       anyone holding enough partial decryptions can read the plaintext: hand yours only to the requester',
      ];
  }
}

export function keyLine(key: KeySummary): string {
  const share =
    key.identifier === null
      ? 'this data directory holds no share'
      : `this data directory holds share ${key.identifier}`;
  return `key ${key.keyId} (${key.suite}, ${key.threshold} of ${key.holders}, ${key.purpose}${key.label === '' ? '' : `, "${key.label}"`}); ${share}`;
}

const waitingNouns: Record<NonNullable<CeremonyProgress['waiting']>['for'], string> = {
  acceptances: 'acceptances',
  deals: 'deals',
  responses: 'responses',
  confirmations: 'confirmations',
};

export function ceremonyLines(p: CeremonyProgress): string[] {
  const lines = [`ceremony ${p.summary.tag}: ${describeCeremony(p.summary)}`];
  if (p.decision === 'approved') lines.push('approved: this participant takes part');
  if (p.decision === 'declined') lines.push('declined: the ceremony fails for everyone');
  if (p.read.length > 0)
    lines.push(
      `read ${p.read.length}: ${p.read.map((r) => `${r.type.toLowerCase()} from ${shortPeer(r.from)}`).join(', ')}`,
    );
  for (const i of p.ignored) lines.push(`ignored ${i.file}: ${i.reason}`);
  for (const e of p.events) {
    if (e.type === 'blamed')
      lines.push(
        `attempt ${e.attempt} blamed ${e.blame.map((b) => `${shortPeer(b.culprit)} (${b.fault})`).join(', ')}`,
      );
    else
      lines.push(`attempt ${e.attempt} started with ${e.recipients.length} recipients, without the blamed`);
  }
  for (const file of p.wrote) lines.push(`wrote ${file}`);
  if (p.phase === 'complete' && p.key !== null) {
    lines.push(`complete: ${keyLine(p.key)}`, `public key ${p.key.publicKeyHex}`);
  } else if (p.phase === 'failed' && p.failure !== null) {
    lines.push(`failed (${p.failure.code}): ${p.failure.reason}`);
  } else if (p.waiting !== null) {
    const w = p.waiting;
    lines.push(
      `phase ${p.phase}, attempt ${p.attempt}: waiting for ${waitingNouns[w.for]} from ${w.missing.length} of ${w.of}` +
        (w.missing.length > 0 ? `: ${peers(w.missing)}` : ''),
    );
  }
  return lines;
}

export function signLines(p: SignProgress): string[] {
  const lines: string[] = [];
  for (const did of p.did) {
    if (did === 'request') lines.push(`request ${p.request} for key ${p.keyId}`);
    if (did === 'committed') lines.push(`committed to sign request ${p.request} (round one)`);
    if (did === 'package') lines.push(`signing package for request ${p.request} ready (round two)`);
    if (did === 'signed') lines.push(`signed request ${p.request} (round two)`);
    if (did === 'not-chosen')
      lines.push(`request ${p.request}: the coordinator chose other holders; nonces deleted`);
    if (did === 'signature') lines.push(`request ${p.request}: signature aggregated and verified`);
  }
  for (const file of p.wrote) lines.push(`wrote ${file}`);
  if (p.waiting !== null) {
    const w = p.waiting;
    lines.push(`request ${p.request}: ${signWaiting(w, peers)}`);
  }
  return lines;
}

export function decryptLines(p: DecryptProgress): string[] {
  const lines: string[] = [];
  for (const did of p.did) {
    if (did === 'request') lines.push(`request ${p.request} for key ${p.keyId}`);
    if (did === 'partial') lines.push(`partial decryption for request ${p.request} written`);
  }
  for (const file of p.wrote) lines.push(`wrote ${file}`);
  return lines;
}

/** "have 1 of 3 commitments; 2 more needed from any of …" */
export function signWaiting(
  w: NonNullable<SignProgress['waiting']>,
  name: (list: readonly string[]) => string,
): string {
  const more = w.need - w.have;
  if (w.missing.length === 0) return `have ${w.have} of ${w.need} ${w.for}`;
  return w.for === 'commitments'
    ? `have ${w.have} of ${w.need} ${w.for}; ${more} more needed from any of ${name(w.missing)}`
    : `have ${w.have} of ${w.need} ${w.for}; waiting for ${name(w.missing)}`;
}

/**
 * Lines for a networked ceremony's progress (`keygen ceremony start|accept`): one line per step, peers
 * shown by their nodes. Keeps the routes from the `proposed` event to name nodes later.
 */
export class CeremonyEventLines {
  private nodes: Record<string, string> = {};

  private node(ceremonyPeer: string): string {
    return shortPeer(this.nodes[ceremonyPeer] ?? ceremonyPeer);
  }

  lines(e: CeremonyNetEvent): string[] {
    switch (e.event) {
      case 'proposed': {
        this.nodes = e.nodes ?? {};
        const s = e.summary!;
        const members = s.members.map((m) => this.node(m.peerId));
        const lines = [
          `ceremony ${e.tag}: ${describeCeremony(s)}`,
          `proposed by node ${shortPeer(e.coordinator ?? '')} to ${members.length} nodes: ${members.join(', ')}`,
        ];
        if (s.members.some((m) => m.you && m.peerId === s.proposer))
          lines.push(`every other participant accepts with: optimystic keygen ceremony accept ${e.tag}`);
        return lines;
      }
      case 'decided':
        return [
          e.decision === 'approved'
            ? 'accepted: this node takes part'
            : 'declined: the ceremony fails for everyone',
        ];
      case 'received':
        return [`${(e.type ?? '').toLowerCase()} from node ${shortPeer(e.node ?? '')}`];
      case 'phase': {
        const w = e.waiting;
        if (w === null || w === undefined) return [`phase ${e.phase}, attempt ${e.attempt}`];
        const who = (w.nodes ?? w.missing).map(shortPeer).join(', ');
        return [
          `phase ${e.phase}, attempt ${e.attempt}: waiting for ${w.for} from ${w.missing.length} of ${w.of} nodes` +
            (w.missing.length > 0 ? `: ${who}` : ''),
        ];
      }
      case 'ignored':
        return [`ignored ${e.reason ?? ''}`];
      case 'blamed':
        return [
          `attempt ${e.attempt} blamed ${(e.blame ?? []).map((b) => `node ${this.node(b.culprit)} (${b.fault})`).join(', ')}`,
        ];
      case 'restarted':
        return [
          `attempt ${e.attempt} started with ${(e.recipients ?? []).length} recipients, without the blamed`,
        ];
      case 'undelivered':
        return [
          `node ${shortPeer(e.node ?? '')} refused our ${(e.type ?? '').toLowerCase()}: ${e.reason ?? ''}`,
        ];
      case 'complete':
        return e.key === undefined
          ? ['complete']
          : [`complete: ${keyLine(e.key)}`, `public key ${e.key.publicKeyHex}`];
      case 'failed':
        return [`failed (${e.failure?.code ?? '?'}): ${e.failure?.reason ?? ''}`];
    }
  }
}
