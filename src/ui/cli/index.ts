// What commands import from the CLI layer.
export { DataCommand, type DataArgs, type DataFlags } from './data-command.js';
export { exitClasses, exitCodeByError, exitCodeFor, type ExitClass, type ExitCode } from './exit-codes.js';
export { describeFailure, failureJson, oneLine, reportFailure, usageError, type Failure } from './failure.js';
export { defaultDataDir, envTruthy, globalFlags, jsonEnvVar, resolveDataDir } from './global-flags.js';
export { InterruptWatch } from './interrupt.js';
export { parseJsonArgument } from './json-argument.js';
export {
  formatTable,
  formatTsv,
  jsonLine,
  Output,
  OutputClosed,
  outputMode,
  RecordStream,
  type OutputMode,
} from './output.js';
export { transactOne, type SingleActionOutcome } from './single-action.js';
export { openLineInput } from './line-input.js';
export { splitLines, type InputLine } from './tx-lines.js';
export { parseInputLine, runTxLines, type TxResultLine, type TxRunSummary } from './tx-runner.js';
export { progressWanted, TxProgress } from './tx-progress.js';
export { describeTransform, parseBlockIdArgument } from './block-id.js';
export {
  closestRows,
  eventLine,
  formatBytes,
  formatDuration,
  formatLatency,
  peerColumns,
  peerDetailFields,
  peerRow,
  pingLines,
  statusFields,
} from './node-view.js';
