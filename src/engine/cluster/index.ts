export { nodeVoteSigner } from './consensus-signer.js';
export { RawConsensusStore, consensusKeyPrefix } from './consensus-store.js';
export { consensusProtocolName, consensusWire } from './consensus-wire.js';
export type { ConsensusWireMessage } from './consensus-wire.js';
export { NetworkConsensus, consensusGroupId, edgeDropReasons } from './consensus-edge.js';
export type {
  ConsensusNetworkPort,
  DecidedListener,
  EdgeDropReason,
  EquivocationListener,
  NetworkConsensusComponents,
  NetworkConsensusInit,
  NetworkConsensusStats,
} from './consensus-edge.js';
