import { EngineError } from '../../../../src/engine/base/errors.js';
import { SeededRng, type Rng } from '../../../../src/engine/base/rng.js';
import { Identity } from '../../../../src/engine/crypto/identity.js';
import {
  createParticipantCard,
  createProposal,
  encryptionKeyFromIdentity,
  joinCeremony,
  signMessage,
  stepCeremony,
  type CeremonyEffect,
  type CeremonyInput,
  type CeremonyKeys,
  type CeremonyMessage,
  type CeremonyState,
  type EncryptionKeyPair,
  type ParticipantCard,
  type ProposalInput,
  type ProposalMessage,
  type ThresholdShare,
} from '../../../../src/engine/crypto/threshold/index.js';

/**
 * A deterministic in-process network for ceremony tests: every broadcast goes to every other
 * participant in FIFO order; adversaries rewrite or drop what they send; when the queue drains and
 * somebody is still waiting, every waiting honest participant gets a Deadline.
 */

export const nowMs = 1_700_000_000_000;

/** Seed for a test: OPTIMYSTIC_SEED when set, else the given default. Printed on failure by `withSeed`. */
export function testSeed(fallback: number): number {
  const env = process.env.OPTIMYSTIC_SEED;
  return env !== undefined && env !== '' ? Number(env) >>> 0 : fallback;
}

/** Runs a body with a seeded Rng and prints the seed if it throws. */
export function withSeed<T>(seed: number, body: (rng: SeededRng) => T): T {
  try {
    return body(new SeededRng(seed));
  } catch (error) {
    console.error(`    failing seed: OPTIMYSTIC_SEED=${seed}`);
    throw error;
  }
}

export interface Participant {
  identity: Identity;
  encryption: EncryptionKeyPair;
  card: ParticipantCard;
  priorShare?: ThresholdShare;
}

export function makeParticipants(rng: Rng, n: number): Participant[] {
  return Array.from({ length: n }, () => {
    const identity = Identity.generate(rng);
    const encryption = encryptionKeyFromIdentity(identity);
    return { identity, encryption, card: createParticipantCard(identity, encryption.publicKey) };
  });
}

export function keysOf(p: Participant): CeremonyKeys {
  return p.priorShare === undefined
    ? { identity: p.identity, encryption: p.encryption }
    : { identity: p.identity, encryption: p.encryption, priorShare: p.priorShare };
}

export function propose(
  proposer: Participant,
  input: Omit<ProposalInput, 'expiresAtMs' | 'roster'> & { roster: Participant[] },
  rng: Rng,
): ProposalMessage {
  return createProposal(
    proposer.identity,
    { ...input, roster: input.roster.map((p) => p.card), expiresAtMs: nowMs + 3_600_000 },
    rng,
  );
}

export interface Adversary {
  /** Rewrites what this participant broadcasts, per recipient; undefined drops it. */
  outgoing?(message: CeremonyMessage, to: string): CeremonyMessage | CeremonyMessage[] | undefined;
  /** Whether this participant approves the proposal (default yes). */
  approves?: boolean;
  /** Whether it is told about deadlines like an honest participant (default no). */
  receivesDeadlines?: boolean;
}

export interface Rejection {
  at: string;
  from: string;
  type: string;
  error: EngineError;
}

export interface RunResult {
  states: Map<string, CeremonyState>;
  effects: Map<string, CeremonyEffect[]>;
  rejections: Rejection[];
  deadlines: number;
}

export interface RunOptions {
  adversaries?: ReadonlyMap<string, Adversary>;
  /** Extra messages injected at the start, delivered to everyone. */
  inject?: { to?: string; message: unknown }[];
  deadlinesMax?: number;
  /** Passes every state and message through JSON text, as the air-gapped edge does with files. */
  roundTrip?: boolean;
  /** Sees every step (state before, input, result). */
  onStep?: (
    peer: string,
    before: CeremonyState,
    input: CeremonyInput,
    after: CeremonyState,
    effects: CeremonyEffect[],
  ) => void;
}

export function runCeremony(
  participants: readonly Participant[],
  proposal: ProposalMessage,
  rng: Rng,
  options: RunOptions = {},
): RunResult {
  const adversaries = options.adversaries ?? new Map<string, Adversary>();
  const byPeer = new Map(participants.map((p) => [p.identity.peerId, p] as const));
  const states = new Map<string, CeremonyState>();
  const effects = new Map<string, CeremonyEffect[]>();
  const rejections: Rejection[] = [];
  const queue: { to: string; message: unknown }[] = [];
  const ids = participants.map((p) => p.identity.peerId);

  const broadcast = (from: string, message: CeremonyMessage): void => {
    const adversary = adversaries.get(from);
    for (const to of ids) {
      if (to === from) continue;
      const out = adversary?.outgoing === undefined ? message : adversary.outgoing(message, to);
      if (out === undefined) continue;
      for (const m of Array.isArray(out) ? out : [out]) queue.push({ to, message: m });
    }
  };
  const apply = (peer: string, input: CeremonyInput): void => {
    const p = byPeer.get(peer)!;
    const state =
      options.roundTrip === true
        ? (JSON.parse(JSON.stringify(states.get(peer)!)) as CeremonyState)
        : states.get(peer)!;
    if (options.roundTrip === true && input.type === 'Receive')
      input = { type: 'Receive', message: JSON.parse(JSON.stringify(input.message)) as unknown };
    let step;
    try {
      step = stepCeremony(state, input, keysOf(p));
    } catch (error) {
      if (!(error instanceof EngineError) || input.type !== 'Receive') throw error;
      const m = input.message as { from?: string; type?: string };
      rejections.push({ at: peer, from: String(m.from), type: String(m.type), error });
      return;
    }
    options.onStep?.(peer, state, input, step.state, step.effects);
    states.set(peer, step.state);
    effects.get(peer)!.push(...step.effects);
    for (const e of step.effects) if (e.type === 'Broadcast') broadcast(peer, e.message);
  };

  for (const p of participants) {
    states.set(p.identity.peerId, joinCeremony(proposal, keysOf(p), rng, nowMs));
    effects.set(p.identity.peerId, []);
  }
  for (const inj of options.inject ?? []) {
    for (const to of inj.to === undefined ? ids : [inj.to]) queue.push({ to, message: inj.message });
  }
  for (const p of participants) {
    const peer = p.identity.peerId;
    if (adversaries.get(peer)?.approves === false) continue;
    apply(peer, { type: 'Approve' });
  }
  let deadlines = 0;
  const deadlinesMax = options.deadlinesMax ?? 4;
  for (;;) {
    while (queue.length > 0) {
      const { to, message } = queue.shift()!;
      apply(to, { type: 'Receive', message });
    }
    const waiting = ids.filter(
      (peer) =>
        adversaries.get(peer)?.receivesDeadlines !== false &&
        (adversaries.get(peer)?.receivesDeadlines === true || !adversaries.has(peer)) &&
        !['complete', 'failed'].includes(states.get(peer)!.phase),
    );
    if (waiting.length === 0 || deadlines >= deadlinesMax) break;
    deadlines++;
    for (const peer of waiting) apply(peer, { type: 'Deadline' });
  }
  return { states, effects, rejections, deadlines };
}

/** Re-signs a (modified) message as its sender. */
export function resign<T extends CeremonyMessage>(identity: Identity, message: T): T {
  const { signature: _signature, ...rest } = message;
  return signMessage<T>(identity, rest as never);
}

export function honest(
  participants: readonly Participant[],
  adversaries: ReadonlyMap<string, unknown>,
): Participant[] {
  return participants.filter((p) => !adversaries.has(p.identity.peerId));
}

export function seeded(seed: number): SeededRng {
  return new SeededRng(seed);
}

// --- helpers over finished ceremonies ------------------------------------------------------------

export interface GeneratedKey {
  publicKey: import('../../../../src/engine/crypto/threshold/index.js').ThresholdPublicKey;
  shares: Map<string, ThresholdShare>;
  participants: Participant[];
  run: RunResult;
}

/** Asserts that every listed participant completed with the same public key, and collects shares. */
export function collectKey(run: RunResult, participants: readonly Participant[]): GeneratedKey {
  const states = participants.map((p) => run.states.get(p.identity.peerId)!);
  for (const s of states) {
    if (s.phase !== 'complete') throw new Error(`${s.self} ended ${s.phase}: ${JSON.stringify(s.failure)}`);
  }
  const first = states[0]!.result!;
  const shares = new Map<string, ThresholdShare>();
  for (const s of states) {
    if (JSON.stringify(s.result!.publicKey) !== JSON.stringify(first.publicKey))
      throw new Error(`${s.self} derived another public key`);
    if (s.result!.transcript !== first.transcript) throw new Error(`${s.self} has another transcript`);
    if (s.result!.share !== null) shares.set(s.self, s.result!.share);
  }
  return { publicKey: first.publicKey, shares, participants: [...participants], run };
}

/** Picks k distinct items, in a seeded random order. */
export function pick<T>(rng: Rng, items: readonly T[], k: number): T[] {
  const pool = [...items];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, k);
}
