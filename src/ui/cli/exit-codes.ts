import type { ErrorCode } from '../../engine/index.js';

/**
 * The one place that maps error codes to process exit codes (SPEC §2.3). docs/errors.md holds the same
 * table in prose; test/ui/exit-codes.test.ts parses the doc and checks the two agree.
 */

/** Exit classes, each with the exit code a script can branch on. */
export const exitClasses = {
  ok: 0,
  bug: 1,
  usage: 2,
  configInvalid: 3,
  notFound: 4,
  conflict: 5,
  unavailable: 6,
  integrity: 7,
  expectFailed: 8,
  interrupted: 130,
} as const;

export type ExitClass = keyof typeof exitClasses;
export type ExitCode = (typeof exitClasses)[ExitClass];

/** Every error code has exactly one exit code; `satisfies` makes a missing or unknown code a compile error. */
export const exitCodeByError = {
  INTERNAL: exitClasses.bug,
  BAD_INPUT: exitClasses.usage,
  TOO_LARGE: exitClasses.usage,
  WRONG_TYPE: exitClasses.usage,
  EXISTS: exitClasses.usage,
  CONFIG_INVALID: exitClasses.configInvalid,
  NOT_FOUND: exitClasses.notFound,
  CONFLICT: exitClasses.conflict,
  UNAVAILABLE: exitClasses.unavailable,
  TIMEOUT: exitClasses.unavailable,
  NO_QUORUM: exitClasses.unavailable,
  DATA_DIR_BUSY: exitClasses.unavailable,
  BAD_SIGNATURE: exitClasses.integrity,
  BAD_CERTIFICATE: exitClasses.integrity,
  CORRUPT: exitClasses.integrity,
  EXPECT_FAILED: exitClasses.expectFailed,
  INTERRUPTED: exitClasses.interrupted,
} as const satisfies Record<ErrorCode, ExitCode>;

export function exitCodeFor(code: ErrorCode): ExitCode {
  return exitCodeByError[code];
}
