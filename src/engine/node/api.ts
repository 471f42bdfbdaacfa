/**
 * The node's API methods: one table shared by the control socket and the libp2p `client` protocol.
 * Each method validates its params (BAD_INPUT naming the field), calls the Database or NodeControl,
 * and answers with a value or a stream. Methods that change the node itself (stop, dial) are served
 * only on the control socket, which only the node's own user can open.
 */
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { isSuiteId } from '../crypto/index.js';
import { schema } from '../network/index.js';
import { validateTxRequest } from '../transactions/tx-parse.js';
import type { TxOutcome } from '../transactions/tx-types.js';
import type { Database, ReadOptions, ScanOptions } from './database-api.js';
import type { CeremonyApi } from './ceremony-net.js';
import type { NodeControl } from './node-api.js';

const { object, optional, string, integer, boolean, json, array } = schema;

export type ApiAnswer =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'stream'; readonly items: AsyncIterable<unknown> };

export interface ApiTarget {
  readonly db: Database;
  readonly node: NodeControl;
}

export interface ApiContext {
  /** True on the control socket; false for requests from other peers. */
  readonly local: boolean;
}

/** Pings one `peer ping` may ask for: enough for a spread, too few to turn a node into a flood source. */
export const pingCountMax = 10;

const name = string({ charsMin: 1, charsMax: 128 });
const key = string({ charsMax: limits.keyBytesMax });
const blockId = string({ charsMin: 43, charsMax: 43, pattern: /^[A-Za-z0-9_-]{43}$/ });
const peer = string({ charsMin: 1, charsMax: 512 });
const revision = optional(integer({ min: 0 }));

interface Method {
  readonly stream?: boolean;
  readonly localOnly?: boolean;
  run(target: ApiTarget, params: unknown): Promise<unknown> | AsyncIterable<unknown>;
}

function method<P>(
  validate: (value: unknown) => P,
  run: (target: ApiTarget, params: P) => Promise<unknown>,
  flags: { localOnly?: boolean } = {},
): Method {
  return { ...flags, run: (target, params) => run(target, validate(params)) };
}

function streamMethod<P>(
  validate: (value: unknown) => P,
  run: (target: ApiTarget, params: P) => AsyncIterable<unknown>,
  flags: { localOnly?: boolean } = {},
): Method {
  return { ...flags, stream: true, run: (target, params) => run(target, validate(params)) };
}

/** Key ceremonies are the node's own business: served on its control socket only. */
function ceremonies(node: NodeControl): CeremonyApi {
  if (node.ceremonies === undefined)
    throw new EngineError(
      'UNAVAILABLE',
      'key ceremonies need a running node: start one with optimystic node start',
    );
  return node.ceremonies;
}

const session = string({ charsMin: 1, charsMax: 64 });

const none = object({});

export const apiMethods: Readonly<Record<string, Method>> = {
  'db.createCollection': method(object({ name, kind: string({ charsMax: 16 }) }), ({ db }, p) => {
    if (p.kind !== 'tree' && p.kind !== 'diary')
      throw new EngineError('BAD_INPUT', 'kind: expected "tree" or "diary"');
    return db.createCollection(p.name, p.kind);
  }),
  'db.listCollections': method(none, ({ db }) => db.listCollections()),
  'db.collectionInfo': method(object({ name }), ({ db }, p) => db.collectionInfo(p.name)),
  'db.get': method(object({ name, key, at: revision }), ({ db }, p) =>
    db.get(p.name, p.key, p.at === undefined ? {} : { at: p.at }),
  ),
  'db.scan': streamMethod(
    object({
      name,
      from: optional(key),
      to: optional(key),
      limit: optional(integer({ min: 1 })),
      reverse: optional(boolean()),
      at: revision,
    }),
    ({ db }, { name: collection, ...options }) => db.scan(collection, options as ScanOptions),
  ),
  'db.read': streamMethod(
    object({
      name,
      from: optional(integer({ min: 0 })),
      limit: optional(integer({ min: 1 })),
      reverse: optional(boolean()),
      at: revision,
    }),
    ({ db }, { name: collection, ...options }) => db.read(collection, options as ReadOptions),
  ),
  'db.transact': method(
    object({ request: json(), certificates: optional(boolean()) }),
    ({ db }, p): Promise<TxOutcome> => {
      let request;
      try {
        request = validateTxRequest(p.request);
      } catch (error) {
        const engineError =
          error instanceof EngineError ? error : new EngineError('BAD_INPUT', String(error));
        return Promise.resolve({
          ok: false,
          error: { code: engineError.code, message: engineError.message },
        });
      }
      return db.transact(request, p.certificates === true ? { certificates: true } : {});
    },
  ),
  'db.block': method(object({ id: blockId, rev: optional(integer({ min: 1 })) }), ({ db }, p) =>
    db.block(p.id, p.rev === undefined ? {} : { rev: p.rev }),
  ),
  'db.blockHistory': method(object({ id: blockId }), ({ db }, p) => db.blockHistory(p.id)),
  'db.blockHolders': method(object({ id: blockId }), ({ db }, p) => db.blockHolders(p.id)),
  'db.blockPending': method(object({ id: blockId }), ({ db }, p) => db.blockPending(p.id)),
  'db.verifyBlock': method(object({ id: blockId }), ({ db }, p) => db.verifyBlock(p.id)),
  'node.status': method(none, ({ node }) => node.status()),
  'node.identity': method(none, ({ node }) => node.identity()),
  'node.stop': method(none, ({ node }) => node.stop().then(() => ({ stopping: true })), { localOnly: true }),
  'node.reload': method(none, ({ node }) => node.reload(), { localOnly: true }),
  'node.watch': streamMethod(none, ({ node }) => node.watch()),
  'peer.list': method(none, ({ node }) => node.peers()),
  'peer.info': method(object({ peer: optional(peer) }), ({ node }, p) => node.peerInfo(p.peer)),
  'peer.connect': method(object({ address: peer }), ({ node }, p) => node.connect(p.address), {
    localOnly: true,
  }),
  'peer.ping': method(
    object({ peer, count: optional(integer({ min: 1, max: pingCountMax })) }),
    ({ node }, p) => node.ping(p.peer, p.count ?? 1),
  ),
  'peer.find': method(object({ peer }), ({ node }, p) => node.findPeer(p.peer)),
  'peer.closest': method(
    object({
      key: string({ charsMin: 1, charsMax: limits.keyBytesMax }),
      k: optional(integer({ min: 1, max: limits.closestPeersMax })),
    }),
    ({ node }, p) => node.closest(p.key, p.k),
  ),
  'keygen.info': method(none, ({ node }) => ceremonies(node).info(), { localOnly: true }),
  'keygen.unlock': method(
    object({ passphrase: string({ charsMax: 4096 }) }),
    ({ node }, p) => ceremonies(node).unlock(p.passphrase),
    { localOnly: true },
  ),
  'keygen.ceremony.start': method(
    object({
      participants: array(peer, { itemsMax: limits.ceremonyParticipantsMax }),
      threshold: integer({ min: 2, max: limits.ceremonyParticipantsMax }),
      suite: optional(string({ charsMax: 32 })),
      purpose: optional(string({ charsMax: 16 })),
      label: optional(string({ charsMax: limits.ceremonyLabelCharsMax })),
      expiresInMs: integer({ min: 1 }),
      phaseTimeoutMs: optional(integer({ min: 1 })),
    }),
    async ({ node }, { suite, purpose, ...p }) => {
      if (suite !== undefined && !isSuiteId(suite))
        throw new EngineError('BAD_INPUT', `unknown suite ${suite}`);
      if (purpose !== undefined && purpose !== 'sign' && purpose !== 'decrypt')
        throw new EngineError('BAD_INPUT', 'purpose: expected "sign" or "decrypt"');
      return ceremonies(node).startCeremony({
        ...p,
        ...(suite === undefined ? {} : { suite }),
        ...(purpose === undefined ? {} : { purpose }),
      });
    },
    { localOnly: true },
  ),
  'keygen.ceremony.renew': method(
    object({
      kind: string({ charsMax: 16 }),
      key: string({ charsMin: 1, charsMax: 200 }),
      participants: array(peer, { itemsMax: limits.ceremonyParticipantsMax }),
      dealers: optional(array(peer, { itemsMax: limits.ceremonyParticipantsMax })),
      threshold: optional(integer({ min: 1, max: limits.ceremonyParticipantsMax })),
      expiresInMs: integer({ min: 1 }),
      phaseTimeoutMs: optional(integer({ min: 1 })),
    }),
    async ({ node }, { kind, ...p }) => {
      if (kind !== 'refresh' && kind !== 'reshare')
        throw new EngineError('BAD_INPUT', 'kind: expected "refresh" or "reshare"');
      return ceremonies(node).renewKey({ kind, ...p });
    },
    { localOnly: true },
  ),
  'keygen.exchange': method(
    object({
      key: string({ charsMin: 1, charsMax: 200 }),
      nodes: optional(array(peer, { itemsMax: limits.ceremonyParticipantsMax })),
    }),
    ({ node }, p) => ceremonies(node).exchange(p),
    { localOnly: true },
  ),
  'keygen.ceremony.decide': method(
    object({
      session: optional(session),
      approve: boolean(),
      reason: optional(string({ charsMax: 200 })),
    }),
    ({ node }, p) =>
      ceremonies(node).decide(
        p.session,
        p.approve ? { approve: true } : { approve: false, reason: p.reason ?? 'declined by its operator' },
      ),
    { localOnly: true },
  ),
  'keygen.ceremony.follow': streamMethod(
    object({ session }),
    ({ node }, p) => ceremonies(node).follow(p.session),
    { localOnly: true },
  ),
};

export function isApiMethod(name: string): boolean {
  return Object.hasOwn(apiMethods, name);
}

/** Runs one API request. Throws EngineError (BAD_INPUT for an unknown method or bad params). */
export async function callApi(
  target: ApiTarget,
  methodName: string,
  params: unknown,
  context: ApiContext,
): Promise<ApiAnswer> {
  const entry = isApiMethod(methodName) ? apiMethods[methodName] : undefined;
  if (entry === undefined)
    throw new EngineError('BAD_INPUT', `unknown method ${JSON.stringify(methodName)}`, {
      method: methodName,
    });
  if (entry.localOnly === true && !context.local)
    throw new EngineError(
      'BAD_INPUT',
      `${methodName} is served only on the node's own control socket, not to other peers`,
    );
  try {
    if (entry.stream === true)
      return { kind: 'stream', items: entry.run(target, params) as AsyncIterable<unknown> };
    return { kind: 'value', value: await (entry.run(target, params) as Promise<unknown>) };
  } catch (error) {
    if (
      error instanceof EngineError &&
      error.code === 'BAD_INPUT' &&
      typeof error.details?.['path'] === 'string'
    )
      throw new EngineError('BAD_INPUT', `${methodName} params: ${error.message}`, error.details, {
        cause: error,
      });
    throw error;
  }
}
