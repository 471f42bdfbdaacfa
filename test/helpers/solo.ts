import { systemClock } from '../../src/engine/base/clock.js';
import { SeededRng } from '../../src/engine/base/rng.js';
import { SoloCertifier } from '../../src/engine/transactions/certifier.js';
import { LogTail, type LogTailInit } from '../../src/engine/transactions/log-tail.js';
import type { RepoClient } from '../../src/engine/transactions/protocol.js';
import { MemoryRawStore } from '../../src/engine/storage/memory-store.js';
import type { RawStore } from '../../src/engine/storage/raw-store.js';
import { SoloNode, type SoloNodeInit } from '../../src/engine/node/solo-node.js';
import type { TxOutcome, TxRequest } from '../../src/engine/transactions/tx-types.js';

/** A solo node over a memory store (kept so a test can "restart" the node on the same data). */
export async function memoryNode(
  seed = 1,
  init: SoloNodeInit = {},
  raw?: RawStore,
): Promise<{ node: SoloNode; raw: RawStore }> {
  const store = raw ?? new MemoryRawStore();
  if (raw === undefined) await store.open();
  const node = await SoloNode.open({ raw: store, rng: new SeededRng(seed) }, init);
  return { node, raw: store };
}

/**
 * An afterExecute hook that holds every first attempt until `count` of them have executed, so those
 * transactions all read before any of them commits.
 */
export class FirstAttemptBarrier {
  private waiting = 0;
  private arrived = 0;
  private release: () => void = () => undefined;
  private all: Promise<void> = Promise.resolve();

  /** The next `count` first attempts wait for each other; everything else passes straight through. */
  arm(count: number): void {
    this.waiting = count;
    this.arrived = 0;
    this.all = new Promise<void>((resolve) => (this.release = resolve));
  }

  readonly hook = async (_trxId: string, attempt: number): Promise<void> => {
    if (attempt !== 1 || this.arrived >= this.waiting) return;
    this.arrived += 1;
    const all = this.all;
    if (this.arrived === this.waiting) this.release();
    await all;
  };
}

/**
 * Runs another transaction to its commit between the first attempt's execution of the next
 * transaction and that attempt's commit (the other one passes straight through).
 */
export class CommitBetween {
  private other: (() => Promise<TxOutcome>) | undefined;
  done: Promise<TxOutcome> = Promise.reject(new Error('not armed'));

  arm(other: () => Promise<TxOutcome>): void {
    this.other = other;
    this.done.catch(() => undefined);
  }

  readonly hook = async (_trxId: string, attempt: number): Promise<void> => {
    const other = this.other;
    if (other === undefined || attempt !== 1) return;
    this.other = undefined;
    this.done = other();
    await this.done;
  };
}

export function ok(outcome: TxOutcome): Extract<TxOutcome, { ok: true }> {
  if (!outcome.ok) throw new Error(`transaction failed: ${outcome.error.code} ${outcome.error.message}`);
  return outcome;
}

export async function value(node: SoloNode, collection: string, key: string): Promise<unknown> {
  const got = await node.get(collection, key);
  return got.found ? got.value : undefined;
}

export function put(collection: string, key: string, v: unknown): TxRequest {
  return { actions: [{ collection, op: 'put', key, value: v as never }] };
}

/**
 * Another tail over a node's store (a restarted process, another member, a networked tail with
 * `init`), signing as the node; `parts` replaces its blocks or repo.
 */
export function tailOver(
  node: SoloNode,
  seed: number,
  init: Partial<LogTailInit> = {},
  parts: { readonly blocks?: SoloNode['blocks']; readonly repo?: RepoClient } = {},
): LogTail {
  return new LogTail(
    {
      blocks: parts.blocks ?? node.blocks,
      repo: parts.repo ?? node.repo,
      certifier: new SoloCertifier(node.identity, 'default'),
      clock: systemClock,
      rng: new SeededRng(seed),
    },
    { members: [node.identity.peerId], ...init },
  );
}
