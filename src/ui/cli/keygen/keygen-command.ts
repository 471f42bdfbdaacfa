import { Args, Flags, type Command } from '@oclif/core';
import {
  EngineError,
  KeyStore,
  limits,
  type Decide,
  type Decision,
  type PassphraseSource,
} from '../../../engine/index.js';
import { DataCommand } from '../data-command.js';
import { approvalLines } from './render.js';
import { canPrompt, promptLine, resolvePassphrase } from './prompt.js';

/**
 * Base of the `keygen` commands. They work on `DATA/keys` and on exchange directories, never on the
 * database or the network, so --connect does not apply to them.
 */

/** Test-only: scrypt cost (log2 N) for newly sealed files. Production keeps the default, 2^17. */
export const scryptCostEnvVar = 'OPTIMYSTIC_SCRYPT_COST_LOG2';

export const keygenFlags = {
  passphraseFile: Flags.string({
    description: `read the passphrase from the first line of FILE (else ${'OPTIMYSTIC_PASSPHRASE'}, else a prompt on a terminal)`,
    env: 'OPTIMYSTIC_PASSPHRASE_FILE',
    helpValue: 'FILE',
  }),
  transport: Flags.option({
    options: ['files', 'network'] as const,
    default: 'files' as const,
    description:
      'how messages travel: files in --in/--out directories (air-gapped), or network between running nodes (not available yet)',
  })(),
  in: Flags.string({
    description: 'exchange directory to read message files from (default: --out)',
    helpValue: 'DIR',
  }),
  out: Flags.string({
    description: 'exchange directory to write message files to (default: --in)',
    helpValue: 'DIR',
  }),
  /** Where a proposing command (`ceremony propose`, `refresh`, `reshare`) writes its proposal. */
  proposalOut: Flags.string({
    description: 'exchange directory to write the proposal to',
    helpValue: 'DIR',
    required: true,
  }),
  expires: Flags.string({
    description: 'how long the ceremony may take before it fails with TIMEOUT',
    default: '24h',
    helpValue: 'DURATION',
  }),
  /** Sign and decrypt: narrow a step to one request when several are in the exchange directory. */
  request: Flags.string({
    description: 'act only on this request (its id or first characters)',
    helpValue: 'R',
  }),
  approve: Flags.boolean({
    description:
      'approve what is asked (after reading it); without it a terminal prompts, anything else refuses',
  }),
};

export function sealCostFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env[scryptCostEnvVar];
  if (text === undefined || text === '') return undefined;
  const cost = Number(text);
  if (!Number.isInteger(cost) || cost < limits.sealScryptCostLog2Min || cost > limits.sealScryptCostLog2Max) {
    throw new EngineError(
      'CONFIG_INVALID',
      `${scryptCostEnvVar} must be a whole number from ${limits.sealScryptCostLog2Min} to ${limits.sealScryptCostLog2Max}; unset it outside tests`,
    );
  }
  return cost;
}

export abstract class KeygenCommand<T extends typeof Command> extends DataCommand<T> {
  private passphrasePromise: Promise<string> | undefined;

  override async init(): Promise<void> {
    await super.init();
    if ((this.flags as { connect?: string }).connect !== undefined) {
      throw new EngineError(
        'UNAVAILABLE',
        'keygen commands work on the data directory and exchange files; --connect (OPTIMYSTIC_CONNECT) does not apply to them: drop it',
      );
    }
  }

  protected keyStore(): KeyStore {
    const cost = sealCostFromEnv();
    return new KeyStore(this.dataDir, cost === undefined ? {} : { sealCostLog2: cost });
  }

  /** The passphrase, resolved once and only when something sealed is opened or written. */
  protected passphrase(file: string | undefined, confirm = false): PassphraseSource {
    return () => {
      this.passphrasePromise ??= resolvePassphrase({ file, env: process.env, confirm });
      return this.passphrasePromise;
    };
  }

  /** The networked transport is not built yet: say so plainly instead of pretending. */
  protected requireFiles(transport: string): void {
    if (transport === 'network') {
      throw new EngineError(
        'UNAVAILABLE',
        'the networked transport (between running nodes) is not available yet; use --transport files with --in/--out directories',
      );
    }
  }

  /** --in and --out, each defaulting to the other; at least one is required. */
  protected exchangeDirs(flags: { in?: string | undefined; out?: string | undefined }): {
    inDir: string;
    outDir: string;
  } {
    const inDir = flags.in ?? flags.out;
    const outDir = flags.out ?? flags.in;
    if (inDir === undefined || outDir === undefined)
      throw new EngineError(
        'BAD_INPUT',
        `give the exchange directory with --in DIR and/or --out DIR (see: ${this.commandLine()} --help)`,
      );
    return { inDir, outDir };
  }

  /**
   * Approval: --approve says yes to everything asked; --decline (ceremonies) says no; otherwise a
   * terminal shows the details and asks; with neither, the details go to stderr and the engine
   * refuses with BAD_INPUT, writing nothing.
   */
  protected decider(options: { approve: boolean; decline?: string | undefined }): Decide {
    return async (request) => {
      if (options.decline !== undefined && request.kind === 'ceremony')
        return { approve: false, reason: options.decline } satisfies Decision;
      if (options.approve) return { approve: true };
      const lines = approvalLines(request, Date.now());
      if (!canPrompt()) {
        if (!this.jsonEnabled()) process.stderr.write(`${lines.join('\n')}\n`);
        return undefined;
      }
      process.stderr.write(`${lines.join('\n')}\n`);
      const refusal =
        request.kind === 'ceremony' ? 'n = decline (the ceremony fails for everyone)' : 'n = refuse';
      const answer = (
        await promptLine(`Approve? y = approve, ${refusal}, Enter = decide later: `)
      ).toLowerCase();
      if (answer === 'y' || answer === 'yes') return { approve: true };
      if (answer === 'n' || answer === 'no') {
        const reason = request.kind === 'ceremony' ? await promptLine('Reason (shown to the others): ') : '';
        return { approve: false, reason: reason === '' ? 'declined by its operator' : reason };
      }
      return undefined;
    };
  }

  /** Splits comma-separated list flags (`--roster a,b --roster c`). */
  protected list(values: readonly string[] | undefined): string[] {
    return (values ?? [])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
  }
}

/** `90s`, `30m`, `24h`, `7d` (or plain seconds) as milliseconds; a ceremony may stay open up to 30 days. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  const unitMs = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const ms = match === null ? NaN : Number(match[1]) * unitMs[(match[2] ?? 's') as keyof typeof unitMs];
  if (!Number.isFinite(ms) || ms <= 0 || ms > 30 * 86_400_000)
    throw new EngineError('BAD_INPUT', `${what} must be a duration like 30m, 24h or 7d, at most 30d`);
  return ms;
}

/** The KEY argument every command about one threshold key takes. */
export const keyArg = Args.string({ description: 'key id, unique id prefix, or label', required: true });
