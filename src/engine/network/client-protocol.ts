/**
 * The `client` protocol (`/optimystic/<network>/client/1`): light clients (the CLI with `--connect`)
 * send requests to a node and get replies, or streamed replies for scans. It is generic: a request
 * is any `{ type, … }` object, and the node layer's handler decides what the types mean, validates
 * the rest and answers (throwing EngineError to answer with a code). Frames, limits and timeouts are
 * those of every request/response protocol.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { PrivateKey } from './identity.js';
import { createNetworkNode, type NetworkNode } from './network-node.js';
import type { RequestContext, RequestOptions } from './request-response.js';
import { anyMessage, type AnyMessage, type Validator } from './schema.js';

export const clientProtocolName = 'client';

/** A light-client request: an object with a plain string `type`; the rest is for the handler to check. */
export type ClientRequest = AnyMessage;

/** Answers one client request with a JSON value or `streamReply(items)`. */
export type ClientHandler = (request: ClientRequest, context: RequestContext) => Promise<unknown>;

export interface ServeClientOptions {
  /** Narrower check of requests than "has a type" (e.g. a `messageUnion` of the API's methods). */
  validate?: Validator<ClientRequest>;
  timeoutMs?: number;
  frameBytesMax?: number;
}

/** Registers the server side of the client protocol on a node. */
export async function serveClient(
  node: NetworkNode,
  handler: ClientHandler,
  options: ServeClientOptions = {},
): Promise<void> {
  const { validate = anyMessage, ...rest } = options;
  await node.handle(clientProtocolName, handler, {
    frameBytesMax: limits.clientFrameBytesMax,
    ...rest,
    validate,
  });
}

/** Sends one client request to a peer (id or multiaddr) and returns the reply value. */
export function clientRequest<T = unknown>(
  node: NetworkNode,
  peer: string,
  request: ClientRequest,
  options?: RequestOptions<T>,
): Promise<T> {
  return node.request(peer, clientProtocolName, request, {
    frameBytesMax: limits.clientFrameBytesMax,
    ...options,
  });
}

/** Sends one client request and yields the items of its streamed reply. */
export function clientRequestStream<T = unknown>(
  node: NetworkNode,
  peer: string,
  request: ClientRequest,
  options?: RequestOptions<T>,
): AsyncGenerator<T, void, undefined> {
  return node.requestStream(peer, clientProtocolName, request, {
    frameBytesMax: limits.clientFrameBytesMax,
    ...options,
  });
}

export interface ClientSessionInit {
  /** The node to talk to: a multiaddr ending in /p2p/<peer id>. */
  address: string;
  network?: string;
  /** Default deadline of each request. */
  requestTimeoutMs?: number;
}

/** A light client connected to one node. */
export interface ClientSession {
  /** The remote node's peer id. */
  readonly remotePeerId: string;
  request<T = unknown>(request: ClientRequest, options?: RequestOptions<T>): Promise<T>;
  requestStream<T = unknown>(
    request: ClientRequest,
    options?: RequestOptions<T>,
  ): AsyncGenerator<T, void, undefined>;
  close(): Promise<void>;
}

/**
 * Starts a short-lived client-mode node (no listening, no DHT server) with a fresh identity unless
 * one is given, and connects it to `address`. Close the session to stop the node.
 */
export async function openClientSession(
  init: ClientSessionInit,
  components: { privateKey?: PrivateKey } = {},
): Promise<ClientSession> {
  const privateKey = components.privateKey ?? (await generateKeyPair('Ed25519'));
  const node = await createNetworkNode(
    { privateKey },
    {
      clientMode: true,
      ...(init.network === undefined ? {} : { network: init.network }),
      ...(init.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: init.requestTimeoutMs }),
    },
  );
  try {
    const remote = await node.connect(init.address);
    return {
      remotePeerId: remote.id,
      request: (request, options) => clientRequest(node, remote.id, request, options),
      requestStream: (request, options) => clientRequestStream(node, remote.id, request, options),
      close: () => node.stop(),
    };
  } catch (error) {
    await node.stop();
    throw error instanceof EngineError
      ? error
      : new EngineError('UNAVAILABLE', `could not reach ${init.address}`, undefined, { cause: error });
  }
}
