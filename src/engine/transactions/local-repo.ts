import { EngineError } from '../base/errors.js';
import type { BlockId, TrxId } from '../base/ids.js';
import type { BlockState, BlockStore, PendingTransform } from '../storage/block-store.js';
import type { Certifier } from './certifier.js';
import type { CommitRef, GetBlockRequest, PromoteRequest, RepoClient } from './protocol.js';

export interface LocalRepoComponents {
  readonly blocks: BlockStore;
  readonly certifier: Certifier;
}

export interface LocalRepoInit {
  /** Membership that certificates must carry a quorum of (the solo node alone in embedded mode). */
  readonly members: readonly string[];
  /**
   * Memberships older log blocks may record instead (a solo node known by its bare public key, as
   * solo data directories recorded it before naming it by peer id): their certificates verify too.
   */
  readonly formerMembers?: readonly (readonly string[])[];
}

/**
 * A block holder: serves reads (applying committed transactions it is told about first), stores
 * pends, and promotes pends only on a valid commit certificate. In a network it sits behind the repo
 * protocol handler; in a solo node the coordinator calls it directly.
 */
export class LocalRepo implements RepoClient {
  private readonly blocks: BlockStore;
  private readonly certifier: Certifier;
  private readonly memberships: readonly (readonly string[])[];

  constructor(components: LocalRepoComponents, init: LocalRepoInit) {
    this.blocks = components.blocks;
    this.certifier = components.certifier;
    this.memberships = [init.members, ...(init.formerMembers ?? [])];
  }

  async get(request: GetBlockRequest): Promise<BlockState | undefined> {
    if (request.reinforce !== undefined && request.reinforce.length > 0) {
      await this.reinforce(request.blockId, request.reinforce);
    }
    const latest = await this.blocks.latest(request.blockId);
    if (latest === undefined) return undefined;
    if (request.atLsn === undefined || latest.lsn <= request.atLsn) return latest;
    return this.blocks.at(request.blockId, { lsn: request.atLsn });
  }

  getNow(request: GetBlockRequest): BlockState | null | undefined {
    const latest = this.blocks.latestNow?.(request.blockId);
    if (latest === undefined) return undefined;
    // A commit to apply first (see reinforce) leaves it to get.
    if (request.reinforce?.some((ref) => latest === null || latest.lsn < ref.lsn) === true) return undefined;
    if (latest === null || request.atLsn === undefined || latest.lsn <= request.atLsn) return latest;
    return undefined;
  }

  pend(items: readonly PendingTransform[]): ReturnType<BlockStore['pend']> {
    return this.blocks.pend(items);
  }

  cancel(trxId: TrxId, blockIds: readonly BlockId[]): Promise<void> {
    return this.blocks.cancel(trxId, blockIds);
  }

  async promote(request: PromoteRequest): Promise<void> {
    this.checkProof(request.trxId, request.proof);
    await this.blocks.promote({ trxId: request.trxId, lsn: request.lsn, blockIds: request.blockIds });
  }

  sync(): Promise<void> {
    return this.blocks.sync();
  }

  /** Applies committed transactions this holder has pends for but has not promoted yet, in LSN order. */
  private async reinforce(blockId: BlockId, refs: readonly CommitRef[]): Promise<void> {
    for (const ref of [...refs].sort((a, b) => a.lsn - b.lsn)) {
      const latest = await this.blocks.latest(blockId);
      if (latest !== undefined && latest.lsn >= ref.lsn) continue;
      const holds =
        this.blocks.holdsPend !== undefined
          ? await this.blocks.holdsPend(blockId, ref.trxId)
          : (await this.blocks.pendingOf(blockId)).some((p) => p.trxId === ref.trxId);
      if (!holds) continue;
      if (ref.certificate !== undefined) this.checkProof(ref.trxId, [ref.certificate]);
      await this.blocks.promote({ trxId: ref.trxId, lsn: ref.lsn, blockIds: [blockId] });
    }
  }

  private checkProof(
    trxId: TrxId,
    proof: readonly import('../collections/log/log-block.js').Certificate[],
  ): void {
    if (proof.length === 0)
      throw new EngineError('BAD_CERTIFICATE', `commit of ${trxId} carries no certificate`);
    for (const certificate of proof) {
      if (
        certificate.trxId !== trxId ||
        certificate.decision === 'aborted' ||
        !this.memberships.some((members) => this.certifier.verify(certificate, members))
      ) {
        throw new EngineError('BAD_CERTIFICATE', `commit certificate for ${trxId} does not verify`);
      }
    }
  }
}
