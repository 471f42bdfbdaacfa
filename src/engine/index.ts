// Everything a command or the dashboard calls goes through this module.
export * from './base/index.js';
export type * from './storage/block.js';
export type * from './storage/block-store.js';
export type * from './transactions/tx-types.js';
export { parseTxLine } from './transactions/tx-parse.js';
export { commitPhases, inCommitOrder, type CommitPhase } from './transactions/coordinator.js';
export type * from './node/database-api.js';
export { openDatabase } from './node/embedded.js';
export { shortMs } from './node/timings.js';
export * from './crypto/index.js';
export type * from './node/status.js';
export {
  clockOffsetReportedMs,
  describeClockOffset,
  reachesMajority,
  storeFailureGist,
} from './node/status.js';
export type * from './node/node-api.js';
export type { NodeConfig, NodeSettings } from './config/schema.js';
// Node and config entry points load libp2p, cosmiconfig and the multiaddr parser on first use only.
export {
  clientNetwork,
  loadNodeConfig,
  type LoadNodeConfigInput,
  type ResolvedNodeConfig,
} from './config/resolve.js';
export {
  isNoNodeRunning,
  lightClientIdentity,
  reachDatabase,
  reachNode,
  waitForNodeExit,
  type ReachOptions,
} from './node/reach.js';
export type { RemoteNode } from './node/remote.js';
export type {
  CeremonyApi,
  CeremonyNetEvent,
  CeremonyServiceInfo,
  ExchangeOptions,
  ExchangeReport,
  NodeCard,
  RenewCeremonyOptions,
  StartCeremonyOptions,
  StartedCeremony,
} from './node/ceremony-net.js';
export { signExchangeDir } from './node/ceremony-net.js';
export { RemoteStatusSource, StatusHub } from './node/status-hub.js';
export { dataDirIdentity, startNode } from './node/launch.js';
export type { RunningNode, StartNodeOptions } from './node/node.js';
export {
  KeyStore,
  keystoreDirName,
  writeFileAtomic,
  type AuditEntry,
  type CeremonyIdentity,
  type KeyActivation,
  type KeyStoreInit,
  type StoredKey,
} from './node/keystore.js';
export {
  advanceDecryption,
  advanceSigning,
  ceremonyFileName,
  listCeremonies,
  peerTag,
  proposeCeremony,
  publishCard,
  readCards,
  requestDecryption,
  requestSignature,
  sessionTag,
  stepCeremonyFiles,
  summarizeKey,
  summarizeProposal,
  waitingOf,
  type ApprovalRequest,
  type CeremonyEvent,
  type CeremonyMember,
  type CeremonyProgress,
  type CeremonyRecord,
  type CeremonySummary,
  type Decide,
  type Decision,
  type DecryptProgress,
  type DecryptRequest,
  type KeySummary,
  type PassphraseSource,
  type ProposeOptions,
  type SignatureFile,
  type SignProgress,
  type SignRequest,
  type StepOptions,
  type Waiting,
} from './node/ceremony-files.js';
export { checkCertificateAlone, type CertificateCheck } from './cluster/certifier.js';
