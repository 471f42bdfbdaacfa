/**
 * A running node reached from outside its process: the Database and NodeControl interfaces over an
 * ApiTransport (the control socket, or libp2p for a light client). Every method is one API request.
 */
import { toEngineError } from '../base/errors.js';
import type { Json } from '../base/codec.js';
import type { BlockId } from '../base/ids.js';
import type { BlockRevision, BlockState, PendingTransform } from '../storage/block-store.js';
import type { TreeKey, TransactOptions, TxOutcome, TxRequest } from '../transactions/tx-types.js';
import type {
  CeremonyApi,
  CeremonyNetEvent,
  CeremonyServiceInfo,
  ExchangeOptions,
  ExchangeReport,
  RenewCeremonyOptions,
  StartCeremonyOptions,
  StartedCeremony,
} from './ceremony-net.js';
import type { ApiTransport } from './control-client.js';
import type { BlockHolder } from './database-api.js';
import type {
  BlockVerification,
  CollectionInfo,
  CollectionKind,
  Database,
  GetResult,
  ReadOptions,
  ScanOptions,
} from './database-api.js';
import type {
  ClosestResult,
  IdentityInfo,
  ReloadResult,
  NodeControl,
  PeerAddresses,
  PeerDetail,
  PingResult,
  StatusUpdate,
} from './node-api.js';
import type { NodeStatus, PeerStatus } from './status.js';

/** How the node was reached, for messages and `--verbose` output. */
export type RemoteKind = 'socket' | 'libp2p';

export class RemoteNode implements Database, NodeControl {
  constructor(
    private readonly transport: ApiTransport,
    readonly kind: RemoteKind,
    /** The control socket path or the multiaddr. */
    readonly endpoint: string,
  ) {}

  private call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.transport.call(method, definedOnly(params)) as Promise<T>;
  }

  private stream<T>(method: string, params: Record<string, unknown>): AsyncIterable<T> {
    return this.transport.stream(method, definedOnly(params)) as AsyncIterable<T>;
  }

  createCollection(name: string, kind: CollectionKind): Promise<CollectionInfo> {
    return this.call('db.createCollection', { name, kind });
  }

  listCollections(): Promise<CollectionInfo[]> {
    return this.call('db.listCollections');
  }

  collectionInfo(name: string): Promise<CollectionInfo> {
    return this.call('db.collectionInfo', { name });
  }

  get(name: string, key: TreeKey, options: { readonly at?: number } = {}): Promise<GetResult> {
    return this.call('db.get', { name, key, at: options.at });
  }

  scan(
    name: string,
    options: ScanOptions = {},
  ): AsyncIterable<{ readonly key: TreeKey; readonly value: Json }> {
    return this.stream('db.scan', { name, ...options });
  }

  read(
    name: string,
    options: ReadOptions = {},
  ): AsyncIterable<{ readonly index: number; readonly value: Json }> {
    return this.stream('db.read', { name, ...options });
  }

  /** Operating errors, including losing the node, come back as `ok: false` (the Database contract). */
  async transact(request: TxRequest, options: TransactOptions = {}): Promise<TxOutcome> {
    try {
      return await this.call<TxOutcome>(
        'db.transact',
        options.certificates === true ? { request, certificates: true } : { request },
      );
    } catch (error) {
      const engineError = toEngineError(error);
      // Sent, and then the node went away or did not answer in time: it may have committed.
      const inDoubt = engineError.details?.['inFlight'] === true || engineError.code === 'TIMEOUT';
      const message = inDoubt
        ? `${engineError.message}; the transaction was sent and its outcome is unknown (it may have committed): check before running it again`
        : engineError.message;
      return { ok: false, error: { code: engineError.code, message } };
    }
  }

  block(id: BlockId, options: { readonly rev?: number } = {}): Promise<BlockState> {
    return this.call('db.block', { id, rev: options.rev });
  }

  blockHistory(id: BlockId): Promise<BlockRevision[]> {
    return this.call('db.blockHistory', { id });
  }

  blockHolders(id: BlockId): Promise<BlockHolder[]> {
    return this.call('db.blockHolders', { id });
  }

  blockPending(id: BlockId): Promise<PendingTransform[]> {
    return this.call('db.blockPending', { id });
  }

  verifyBlock(id: BlockId): Promise<BlockVerification> {
    return this.call('db.verifyBlock', { id });
  }

  status(): Promise<NodeStatus> {
    return this.call('node.status');
  }

  identity(): Promise<IdentityInfo> {
    return this.call('node.identity');
  }

  async stop(): Promise<void> {
    await this.call('node.stop');
  }

  reload(): Promise<ReloadResult> {
    return this.call('node.reload');
  }

  peers(): Promise<PeerStatus[]> {
    return this.call('peer.list');
  }

  peerInfo(peer?: string): Promise<PeerDetail> {
    return this.call('peer.info', { peer });
  }

  connect(address: string): Promise<PeerAddresses> {
    return this.call('peer.connect', { address });
  }

  ping(peer: string, count: number): Promise<PingResult> {
    return this.call('peer.ping', { peer, count });
  }

  findPeer(peer: string): Promise<PeerAddresses> {
    return this.call('peer.find', { peer });
  }

  closest(key: string, k?: number): Promise<ClosestResult> {
    return this.call('peer.closest', { key, k });
  }

  watch(): AsyncIterable<StatusUpdate> {
    return this.stream('node.watch', {});
  }

  /** Key ceremonies of the node (its control socket only). */
  readonly ceremonies: CeremonyApi = {
    info: () => this.call<CeremonyServiceInfo>('keygen.info'),
    unlock: (passphrase) => this.call<CeremonyServiceInfo>('keygen.unlock', { passphrase }),
    startCeremony: (options: StartCeremonyOptions) =>
      this.call<StartedCeremony>('keygen.ceremony.start', { ...options }),
    renewKey: (options: RenewCeremonyOptions) =>
      this.call<StartedCeremony>('keygen.ceremony.renew', { ...options }),
    exchange: (options: ExchangeOptions) => this.call<ExchangeReport>('keygen.exchange', { ...options }),
    decide: (session, decision) =>
      this.call<StartedCeremony>('keygen.ceremony.decide', {
        session,
        approve: decision.approve,
        reason: decision.approve ? undefined : decision.reason,
      }),
    follow: (session) => this.stream<CeremonyNetEvent>('keygen.ceremony.follow', { session }),
  };

  /** Closes the connection (the node keeps running). */
  close(): Promise<void> {
    return this.transport.close();
  }
}

function definedOnly(params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).filter(([, value]) => value !== undefined));
}
