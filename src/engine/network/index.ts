export { createNetworkNode, nearest } from './network-node.js';
export type {
  ConnectionGate,
  FoundPeer,
  HandleOptions,
  NetworkComponents,
  NetworkEvent,
  NetworkInit,
  NetworkNode,
  NetworkStats,
  PeerInfo,
} from './network-node.js';
export { privateKeyFromSeed, peerIdOf } from './identity.js';
export type { PrivateKey } from './identity.js';
export { checkName, defaultNetwork, dhtProtocolId, protocolId } from './protocols.js';
export { ByteBudget, decodeFramePayload, encodeFrame, readFrames } from './framing.js';
export type { ByteChunk, ReadFramesOptions } from './framing.js';
export { PeerGuard } from './peer-guard.js';
export type { Admission, PeerGuardInit, Refusal } from './peer-guard.js';
export {
  StreamedReply,
  sendRequest,
  sendStreamRequest,
  serveRequest,
  streamReply,
  writeFrame,
} from './request-response.js';
export type {
  OpenStream,
  RequestContext,
  RequestHandler,
  RequestOptions,
  ServeOptions,
  ServeOutcome,
  WireStream,
} from './request-response.js';
export * as schema from './schema.js';
export type { AnyMessage, Infer, MessageValidator, Validator } from './schema.js';
export {
  clientProtocolName,
  clientRequest,
  clientRequestStream,
  openClientSession,
  serveClient,
} from './client-protocol.js';
export type {
  ClientHandler,
  ClientRequest,
  ClientSession,
  ClientSessionInit,
  ServeClientOptions,
} from './client-protocol.js';
