import { EngineError, type Action, type ActionResult, type Database } from '../../engine/index.js';

/** What a single-key write reports: the transaction, the collection revision it made, its result. */
export interface SingleActionOutcome<R extends ActionResult> {
  readonly trx: string;
  /** Collection revision the write committed at; null when the action changed nothing. */
  readonly rev: number | null;
  readonly result: R;
}

/**
 * Runs one action as a transaction, so `put`, `del` and `append` go through the same path as `tx`.
 * A failed outcome is thrown as an EngineError with the engine's code.
 */
export async function transactOne<Op extends Action['op']>(
  db: Database,
  action: Action & { readonly op: Op },
): Promise<SingleActionOutcome<Extract<ActionResult, { readonly op: Op }>>> {
  const outcome = await db.transact({ actions: [action] });
  if (!outcome.ok) {
    throw new EngineError(outcome.error.code, outcome.error.message);
  }
  const result = outcome.results[0];
  if (result === undefined || result.op !== action.op) {
    throw new EngineError('INTERNAL', `transaction returned no ${action.op} result`);
  }
  return {
    trx: outcome.trx,
    rev: outcome.commit[action.collection]?.rev ?? null,
    result: result as Extract<ActionResult, { readonly op: Op }>,
  };
}
