// What the keygen commands import from the CLI layer.
export {
  KeygenCommand,
  keygenFlags,
  keyArg,
  parseDuration,
  pendingHint,
  suiteAndPurpose,
  scryptCostEnvVar,
  sealCostFromEnv,
  sentLines,
} from './keygen-command.js';
export {
  canPrompt,
  passphraseEnvVar,
  promptHidden,
  promptLine,
  readPassphraseFile,
  resolvePassphrase,
} from './prompt.js';
export {
  approvalLines,
  CeremonyEventLines,
  ceremonyLines,
  decryptLines,
  describeCeremony,
  keyLine,
  shortPeer,
  signLines,
  signWaiting,
} from './render.js';
