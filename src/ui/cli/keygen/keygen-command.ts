import { readdir } from 'node:fs/promises';
import { Args, Flags, type Command } from '@oclif/core';
import {
  EngineError,
  KeyStore,
  limits,
  suiteIds,
  type KeyPurpose,
  type SuiteId,
  type CeremonyApi,
  type StartedCeremony,
  type ExchangeReport,
  isEngineError,
  isNoNodeRunning,
  signExchangeDir,
  type CeremonyNetEvent,
  type Decide,
  type Decision,
  type PassphraseSource,
} from '../../../engine/index.js';
import { DataCommand } from '../data-command.js';
import { approvalLines, CeremonyEventLines } from './render.js';
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
      'how messages travel: files in --in/--out directories (air-gapped); for ceremonies between running nodes use keygen ceremony start and accept',
  })(),
  /** `refresh` and `reshare`: through exchange files, or between running nodes. */
  renewalTransport: Flags.option({
    options: ['files', 'network'] as const,
    default: 'files' as const,
    description:
      'files: the proposal goes to --out and holders step through exchange files (air-gapped); network: the node on --data proposes it to the nodes of the holders, each accepts with keygen ceremony accept',
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
  /** The same for `refresh` and `reshare`, which can also run between running nodes (no directory). */
  renewalOut: Flags.string({
    description: 'exchange directory to write the proposal to (--transport files, required there)',
    helpValue: 'DIR',
  }),
  /** `sign` and `decrypt` between running nodes. */
  useTransport: Flags.option({
    options: ['files', 'network'] as const,
    default: 'files' as const,
    description:
      'files: through --in/--out exchange directories (air-gapped); network: between running nodes, the node on --data sends and receives the files',
  })(),
  nodes: Flags.string({
    description: "--transport network: more nodes to send this run's files to (peer ids, comma-separated)",
    multiple: true,
    helpValue: 'PEERID',
  }),
  waitFiles: Flags.boolean({
    description: "--transport network: go on as files arrive, until this data directory's part is done",
  }),
  timeout: Flags.string({
    description: '--transport network with --wait: give up (TIMEOUT, exit 6) after this long',
    default: '10m',
    helpValue: 'DURATION',
  }),
  /** `refresh` and `reshare` between running nodes. */
  phaseTimeout: Flags.string({
    description: '--transport network: how long a round waits for a silent participant before blaming it',
    default: '60s',
    helpValue: 'DURATION',
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
  /** What a new key is (`ceremony propose`, `ceremony start`): t of n, curve, purpose, label. */
  threshold: Flags.integer({ description: 'signers (or decryptors) needed: t of n', min: 2, required: true }),
  suite: Flags.option({
    options: suiteIds,
    description: 'curve and hash [default: ed25519-sha512 for sign, ristretto255-sha512 for decrypt]',
  })(),
  purpose: Flags.option({
    options: ['sign', 'decrypt'] as const,
    description: 'what the key is for [default: from the suite]',
  })(),
  label: Flags.string({ description: 'a human name for the key, shown to every participant', default: '' }),
  /** Networked ceremonies: follow until the end, or return at once. */
  wait: Flags.boolean({
    description: 'follow the ceremony until it ends; --no-wait returns at once (the node goes on)',
    default: true,
    allowNo: true,
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

  /** These commands move messages through files; ceremonies between running nodes have their own commands. */
  protected requireFiles(transport: string): void {
    if (transport === 'network') {
      throw new EngineError(
        'UNAVAILABLE',
        'this command works through exchange files only: use --transport files with --in/--out directories; a ceremony between running nodes is started with optimystic keygen ceremony start --participants PEERID,… and accepted with optimystic keygen ceremony accept SESSION',
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

  /**
   * Networked ceremonies go through the node running on --data. When `unlock` is set and the node
   * does not hold the keystore passphrase yet, it is resolved here (file, variable or prompt) and
   * handed to the node over its control socket (mode 0600); the node keeps it in memory only.
   */
  protected withCeremonies<R>(
    options: { unlock: boolean; passphraseFile: string | undefined },
    work: (api: CeremonyApi) => Promise<R>,
  ): Promise<R> {
    return this.withNode(async (node) => {
      const api = node.ceremonies;
      if (options.unlock && !(await api.info()).unlocked)
        await api.unlock(await this.passphrase(options.passphraseFile)());
      return work(api);
    }).catch((error: unknown) => {
      // The generic hint names --connect, which keygen commands refuse: they need the local node.
      if (!isNoNodeRunning(error)) throw error;
      throw new EngineError(
        'UNAVAILABLE',
        `no node is running on ${this.dataDir}; between running nodes, keygen works through the node on its own data directory: start it with optimystic node start --data ${this.dataDir}`,
        (error as EngineError).details,
      );
    });
  }

  /**
   * Starts a ceremony through the node on --data (unlocking it when needed), then follows it to its
   * end (`wait`) or prints how the others accept it.
   */
  protected async startNetworked(
    options: { wait: boolean; passphraseFile: string | undefined },
    start: (api: CeremonyApi) => Promise<StartedCeremony>,
  ): Promise<void> {
    await this.withCeremonies({ unlock: true, passphraseFile: options.passphraseFile }, async (api) => {
      const started = await start(api);
      if (options.wait) await this.followCeremony(api, started.session);
      else if (this.out.mode === 'json') await this.out.json(started);
      else
        await this.out.lines([
          `ceremony ${started.tag} proposed to ${Object.keys(started.nodes).length} nodes (session ${started.session})`,
          `every other participant accepts with: optimystic keygen ceremony accept ${started.tag}`,
        ]);
    });
  }

  /** The exchange directory a files-transport proposal goes to (required there, meaningless on the network). */
  protected proposalDir(out: string | undefined): string {
    if (out === undefined)
      throw new EngineError(
        'BAD_INPUT',
        `give the exchange directory for the proposal with --out DIR, or run the ceremony between running nodes with --transport network (see: ${this.commandLine()} --help)`,
      );
    return out;
  }

  /**
   * `sign` and `decrypt` between running nodes: runs `step` on the key's exchange directory once,
   * or (`wait`) again each time other nodes' files arrive there, until it says it is finished or
   * `timeout` passes (TIMEOUT). A step that finds nothing to do yet (NOT_FOUND) waits too.
   */
  protected async untilDone(options: {
    dir: string;
    keyId: string;
    wait: boolean;
    timeout: string;
    what: string;
    step: () => Promise<boolean>;
  }): Promise<boolean> {
    const deadline = Date.now() + parseDuration(options.timeout, '--timeout');
    if (options.wait && this.out.mode !== 'json')
      process.stderr.write(
        `waiting for ${options.what} files of key ${options.keyId} from the other nodes (at most ${options.timeout}; Ctrl-C stops)\n`,
      );
    let seen: string | undefined;
    for (;;) {
      const listing = await filesIn(options.dir);
      if (listing !== seen) {
        seen = listing;
        try {
          if (await options.step()) return true;
        } catch (error) {
          if (!(options.wait && isEngineError(error, 'NOT_FOUND'))) throw error;
        }
      }
      if (!options.wait) return false;
      if (Date.now() > deadline)
        throw new EngineError(
          'TIMEOUT',
          `waited ${options.timeout} for files from the other nodes of key ${options.keyId}; run again to go on`,
        );
      if (this.interrupt.interrupted)
        throw new EngineError('INTERRUPTED', 'stopped waiting; run again to go on from where this left off');
      await new Promise((resolve) => setTimeout(resolve, exchangePollMs));
    }
  }

  /**
   * `sign` and `decrypt` between running nodes: the key (as --data knows it), its exchange directory
   * on this node, the passphrase source, and how to have the node send that directory's files on.
   */
  protected async networkExchange(flags: {
    in?: string | undefined;
    out?: string | undefined;
    nodes?: string[] | undefined;
    'passphrase-file'?: string | undefined;
    key: string;
  }): Promise<{
    store: KeyStore;
    keyId: string;
    dir: string;
    passphrase: PassphraseSource;
    send: (api: CeremonyApi) => Promise<ExchangeReport>;
  }> {
    this.noExchangeDirs(flags);
    const store = this.keyStore();
    const keyId = (await store.resolveKey(flags.key)).publicKey.keyId;
    const nodes = this.list(flags.nodes);
    return {
      store,
      keyId,
      dir: signExchangeDir(store.root, keyId),
      passphrase: this.passphrase(flags['passphrase-file']),
      send: (api) => api.exchange({ key: keyId, nodes }),
    };
  }

  /** --in/--out make no sense between running nodes: the node keeps the files. */
  protected noExchangeDirs(flags: { in?: string | undefined; out?: string | undefined }): void {
    if (flags.in !== undefined || flags.out !== undefined)
      throw new EngineError(
        'BAD_INPUT',
        '--in and --out are for --transport files; between running nodes the node keeps the files',
      );
  }

  /** --wait and --nodes only mean something between running nodes. */
  protected noNetworkFlags(flags: { wait?: boolean; nodes?: string[] | undefined }): void {
    if (flags.wait === true || this.list(flags.nodes).length > 0)
      throw new EngineError('BAD_INPUT', '--wait and --nodes go with --transport network');
  }

  /**
   * Prints a networked ceremony's progress until it ends: one line per step (NDJSON events with
   * --json), the last one the group public key. A failed ceremony throws its code. Ctrl-C stops
   * following; the ceremony goes on in the node.
   */
  protected async followCeremony(api: CeremonyApi, ref: string): Promise<CeremonyNetEvent> {
    const render = new CeremonyEventLines();
    const iterator = api.follow(ref)[Symbol.asyncIterator]();
    const interrupted = new Promise<'interrupted'>((resolve) => {
      if (this.interrupt.interrupted) resolve('interrupted');
      this.interrupt.signal.addEventListener('abort', () => resolve('interrupted'), { once: true });
    });
    let last: CeremonyNetEvent | undefined;
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), interrupted]);
        if (next === 'interrupted')
          throw new EngineError(
            'INTERRUPTED',
            `stopped following ceremony ${last?.tag ?? ref}; it goes on in the node (see: optimystic keygen ceremony list)`,
          );
        if (next.done === true) break;
        last = next.value;
        if (this.out.mode === 'json') await this.out.lines([JSON.stringify(last)]);
        else if (last.event !== 'failed') await this.out.lines(render.lines(last));
        if (last.event === 'complete' || last.event === 'failed') break;
      }
    } finally {
      void iterator.return?.(undefined)?.catch(() => undefined);
    }
    if (last?.event === 'failed' && last.failure !== undefined)
      throw new EngineError(last.failure.code, `ceremony ${last.tag} failed: ${last.failure.reason}`);
    if (last?.event !== 'complete')
      throw new EngineError('UNAVAILABLE', `the node stopped reporting ceremony ${ref} before it ended`);
    return last;
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

/** Without a SESSION argument: name the proposals waiting here, and ask for one. */
export async function pendingHint(api: CeremonyApi, verb: string): Promise<never> {
  const waiting = (await api.info()).ceremonies.filter((c) => !c.decided);
  throw new EngineError(
    waiting.length === 0 ? 'NOT_FOUND' : 'BAD_INPUT',
    waiting.length === 0
      ? 'no ceremony waits for a decision on this node'
      : `name the ceremony to ${verb}: ${waiting.map((c) => `${c.tag} (from node ${c.coordinator})`).join(', ')}`,
  );
}

/**
 * --suite and --purpose of a new key, checked against each other; the purpose defaults from the suite
 * (ristretto255 decrypts), the suite from the purpose (in the engine).
 */
export function suiteAndPurpose(
  suite: SuiteId | undefined,
  purpose: KeyPurpose | undefined,
): { suite?: SuiteId; purpose?: KeyPurpose } {
  if (
    suite !== undefined &&
    purpose !== undefined &&
    (suite === 'ristretto255-sha512') !== (purpose === 'decrypt')
  )
    throw new EngineError(
      'BAD_INPUT',
      `suite ${suite} is not used for ${purpose}: ristretto255-sha512 decrypts, the others sign`,
    );
  return {
    ...(suite === undefined ? {} : { suite }),
    ...(purpose === undefined
      ? suite === 'ristretto255-sha512'
        ? { purpose: 'decrypt' as const }
        : {}
      : { purpose }),
  };
}

/** The KEY argument every command about one threshold key takes. */
export const keyArg = Args.string({
  ignoreStdin: true,
  description: 'key id, unique id prefix, or label',
  required: true,
});

/** How often a waiting `sign`/`decrypt` looks for files other nodes sent. */
const exchangePollMs = 250;

/** Names of the exchange files in a directory: changes when another node's files arrive. */
async function filesIn(dir: string): Promise<string> {
  try {
    return (await readdir(dir))
      .filter((n) => n.startsWith('sign-') || n.startsWith('decrypt-'))
      .sort()
      .join('\n');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/** What a node's exchange sent where (`sign`/`decrypt` between running nodes). */
export function sentLines(report: ExchangeReport): string[] {
  const lines: string[] = [];
  const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (report.sent.length > 0)
    lines.push(`sent ${plural(report.files, 'file')} to ${plural(report.sent.length, 'node')}`);
  else if (report.failed.length === 0 && report.files > 0)
    lines.push('no other node known for this key: name them with --nodes PEERID,…');
  for (const f of report.failed) lines.push(`could not reach node ${f.node}: ${f.message} (${f.code})`);
  return lines;
}
