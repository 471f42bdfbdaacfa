/**
 * Threshold cryptography: key ceremonies (generation, refresh, reshare), FROST signing and threshold
 * decryption. Nothing here ever rebuilds a group secret.
 */
export { suiteIds, isSuiteId, getSuite, type SuiteId, type Suite, type GroupPoint } from './suites.js';
export {
  keyPurposes,
  suiteFitsPurpose,
  keyIdFor,
  publicKeyDigest,
  checkPublicKey,
  checkShare,
  type KeyPurpose,
  type KeyHolder,
  type ThresholdPublicKey,
  type ThresholdShare,
  type CheckedPublicKey,
} from './key.js';
export {
  commitToSign,
  createSigningPackage,
  signingPackageDigest,
  signPackage,
  verifySignatureShare,
  findInvalidSignatureShares,
  aggregateSignature,
  verifyGroupSignature,
  type SigningCommitment,
  type SigningNonces,
  type SigningPackage,
  type SignatureShare,
  type HolderRef,
} from './signing.js';
export {
  encryptToGroup,
  ciphertextDigest,
  createPartialDecryption,
  verifyPartialDecryption,
  combinePartialDecryptions,
  type ThresholdCiphertext,
  type PartialDecryption,
  type CombinedDecryption,
} from './decryption.js';
export {
  encryptionSuite,
  encryptionKeyFromSecret,
  encryptionKeyFromIdentity,
  generateEncryptionKey,
  sealShare,
  openShare,
  discloseSharedKey,
  checkDisclosure,
  openWithSharedKey,
  type EncryptionKeyPair,
  type ShareSlot,
} from './share-encryption.js';
export {
  ceremonyDomain,
  cardDomain,
  ceremonyKinds,
  createParticipantCard,
  checkParticipantCard,
  parseCeremonyMessage,
  signMessage,
  verifyMessageSignature,
  messageDigest,
  sessionIdOf,
  type CeremonyKind,
  type ParticipantCard,
  type Proposal,
  type ProposalMessage,
  type AcceptMessage,
  type DeclineMessage,
  type DealMessage,
  type EncryptedShare,
  type Complaint,
  type ResponseMessage,
  type ConfirmMessage,
  type CeremonyMessage,
} from './messages.js';
export { createProposal, checkProposal, type ProposalInput, type CheckedProposal, type RosterMember } from './proposal.js';
export { faults, attemptContext, checkDeal, judgeAttempt, type Fault, type Blame, type AttemptState, type AttemptContext } from './judge.js';
export {
  joinCeremony,
  stepCeremony,
  describeMessage,
  type CeremonyKeys,
  type CeremonyPhase,
  type CeremonyState,
  type CeremonyInput,
  type CeremonyEffect,
  type CeremonyStep,
  type CeremonyOutcome,
  type CeremonyResult,
  type CeremonyFailure,
  type AttemptRecord,
} from './ceremony.js';
export {
  seededRandom,
  startDealing,
  shareFor,
  checkDealing,
  shareMatches,
  finishKeyGeneration,
  combineKeyGenerationCommitments,
  combineReshare,
  type Dealing,
  type DealerSecret,
  type DealingFault,
} from './dkg.js';
export { proveDleq, verifyDleq, proveKnowledge, verifyKnowledge, verifyProofOfPossession, type DleqStatement } from './proofs.js';
