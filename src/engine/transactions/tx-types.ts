import type { ErrorCode } from '../base/errors.js';
import type { Json } from '../base/codec.js';
import type { Certificate } from '../collections/log/log-block.js';

/** Tree keys are strings; diary entries are addressed by their 0-based index. */
export type TreeKey = string;

/** One logical action of a transaction (SPEC §2.2). Actions are replayed on conflict. */
export type Action =
  | { readonly collection: string; readonly op: 'get'; readonly key: TreeKey }
  | { readonly collection: string; readonly op: 'put'; readonly key: TreeKey; readonly value: Json }
  | { readonly collection: string; readonly op: 'del'; readonly key: TreeKey }
  | {
      readonly collection: string;
      readonly op: 'incr';
      readonly key: TreeKey;
      /**
       * Dotted path of the numeric field inside the value ("balance", "stats.count"); without one,
       * the value itself is the number (a counter).
       */
      readonly path?: string;
      readonly by: number;
      readonly min?: number;
      readonly max?: number;
    }
  | {
      readonly collection: string;
      readonly op: 'merge';
      readonly key: TreeKey;
      readonly value: { readonly [k: string]: Json };
    }
  | { readonly collection: string; readonly op: 'append'; readonly value: Json }
  | {
      readonly collection: string;
      readonly op: 'read';
      readonly from?: number;
      readonly limit?: number;
      readonly reverse?: boolean;
    }
  | {
      readonly collection: string;
      readonly op: 'scan';
      readonly from?: TreeKey;
      readonly to?: TreeKey;
      readonly limit?: number;
      readonly reverse?: boolean;
    };

export type ActionOp = Action['op'];

/** A precondition evaluated on the transaction's snapshot. */
export interface Expectation {
  readonly collection: string;
  readonly key: TreeKey;
  readonly exists?: boolean;
  readonly value?: Json;
}

export interface TxRequest {
  readonly actions: readonly Action[];
  readonly expect?: readonly Expectation[];
}

/** Result of one action, in action order. */
export type ActionResult =
  | { readonly op: 'get'; readonly key: TreeKey; readonly found: boolean; readonly value: Json | null }
  | { readonly op: 'put'; readonly key: TreeKey }
  | { readonly op: 'del'; readonly key: TreeKey; readonly deleted: boolean }
  | { readonly op: 'incr'; readonly key: TreeKey; readonly value: number }
  | { readonly op: 'merge'; readonly key: TreeKey; readonly value: Json }
  | { readonly op: 'append'; readonly index: number }
  | { readonly op: 'read'; readonly entries: readonly { readonly index: number; readonly value: Json }[] }
  | { readonly op: 'scan'; readonly entries: readonly { readonly key: TreeKey; readonly value: Json }[] };

/** Where a transaction committed in one collection. */
export interface CommitPoint {
  /** The collection's log LSN of the commit. */
  readonly rev: number;
  /**
   * The commit certificate of that log entry (the decision and a quorum of its tail group's Ed25519
   * signatures; a solo node's own signature), verifiable offline (`optimystic block verify
   * --certificates`). Present only when asked for (TransactOptions.certificates).
   */
  readonly certificate?: Certificate;
}

/** How a transaction's outcome is reported. */
export interface TransactOptions {
  /** Include each collection's commit certificate in `commit` (they are about 0.3–1 KB each). */
  readonly certificates?: boolean;
}

export type TxOutcome =
  | {
      readonly ok: true;
      readonly trx: string;
      /** Per written collection, the revision (log LSN) the transaction committed at. */
      readonly commit: Readonly<Record<string, CommitPoint>>;
      readonly results: readonly ActionResult[];
      /** Attempts it took (1 = no conflict). */
      readonly attempts: number;
    }
  | {
      readonly ok: false;
      readonly error: {
        readonly code: ErrorCode;
        readonly message: string;
        /** Index of the action (or -1 for an `expect` entry) the error is about, when there is one. */
        readonly action?: number;
      };
    };
