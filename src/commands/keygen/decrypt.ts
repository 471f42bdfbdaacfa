import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import {
  advanceDecryption,
  EngineError,
  isEngineError,
  requestDecryption,
  writeFileAtomic,
  type DecryptProgress,
  type ExchangeReport,
  type ThresholdCiphertext,
} from '../../engine/index.js';
import { decryptLines, keyArg, KeygenCommand, keygenFlags, sentLines } from '../../ui/cli/keygen/index.js';

export default class KeygenDecrypt extends KeygenCommand<typeof KeygenDecrypt> {
  static override summary =
    'Decrypt with a threshold key: t holders answer with partial decryptions, through files or between running nodes';
  static override description =
    'The key is never rebuilt: each holder returns D = s·U for its share s with a DLEQ proof that it ' +
    'used the share behind its public verifying share; the requester checks every proof and combines t ' +
    'valid partials.\n\n' +
    '1. The requester starts: `keygen decrypt KEY --ciphertext FILE --out DIR` (FILE from keygen encrypt; ' +
    '- for stdin). A requester that holds a share adds its own partial.\n' +
    '2. Each holder runs `keygen decrypt KEY --in DIR`: it shows the request, asks for approval ' +
    '(--approve when not on a terminal), writes its partial (decrypt-<R>-partial-<peer>.json, mode 0600) ' +
    'and records it in its audit log (DATA/keys/audit.log).\n' +
    '3. The requester runs `keygen decrypt KEY --in DIR` again: with t valid partials it prints the ' +
    'plaintext (raw bytes on stdout, or to --plaintext FILE). Fewer than t valid partials is NO_QUORUM ' +
    '(exit 6); invalid ones are named (on stderr, or in the error when they leave too few).\n\n' +
    'Anyone holding t partials of a request can read its plaintext: keep the exchange directory as ' +
    'private as the plaintext. --json prints the progress of each request, with "plaintext" (base64url) ' +
    'and "text" (when it is UTF-8) once decrypted.\n\n' +
    'With --transport network the same steps run between running nodes: no --in/--out; the request goes ' +
    "from the requester's node to the nodes of the holders (known from the ceremony that made the key " +
    'between running nodes; name others with --nodes), and each partial decryption goes back to the ' +
    'node the request came from and nowhere else (stored there mode 0600). With --wait a run goes on by ' +
    'itself as files arrive: the requester until the plaintext (`keygen decrypt KEY --ciphertext F ' +
    '--transport network --wait`), a holder until it has answered (`keygen decrypt KEY --transport network ' +
    '--approve --wait`), each at most --timeout. Needs the node running on every participating data ' +
    'directory.';
  static override examples = [
    {
      description: 'Requester: start',
      command: '<%= config.bin %> <%= command.id %> vault --ciphertext secret.ct.json --out /media/usb/dec',
    },
    {
      description: 'Holder: approve and answer',
      command: '<%= config.bin %> <%= command.id %> vault --in /media/usb/dec --approve',
    },
    {
      description: 'Requester: combine',
      command: '<%= config.bin %> <%= command.id %> vault --in /media/usb/dec --plaintext secret.txt',
    },
    {
      description: 'Between running nodes: the requester waits for the plaintext…',
      command:
        '<%= config.bin %> <%= command.id %> vault --ciphertext secret.ct.json --transport network --wait --plaintext secret.txt',
    },
    {
      description: '…while each holder approves on its own node',
      command: '<%= config.bin %> <%= command.id %> vault --transport network --approve --wait',
    },
  ];
  static override args = {
    key: keyArg,
  };
  static override flags = {
    ciphertext: Flags.string({
      description: 'start a request to decrypt this ciphertext file (- for stdin)',
      helpValue: 'FILE',
    }),
    in: keygenFlags.in,
    out: keygenFlags.out,
    approve: keygenFlags.approve,
    request: keygenFlags.request,
    plaintext: Flags.string({
      description: 'write the plaintext to FILE (mode 0600) instead of stdout',
      helpValue: 'FILE',
    }),
    transport: keygenFlags.useTransport,
    nodes: keygenFlags.nodes,
    wait: keygenFlags.waitFiles,
    timeout: keygenFlags.timeout,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    if (this.flags.transport === 'network') return this.runNetworked();
    this.noNetworkFlags(this.flags);
    const { inDir, outDir } = this.exchangeDirs(this.flags);
    const store = this.keyStore();
    const passphrase = this.passphrase(this.flags['passphrase-file']);
    if (this.flags.ciphertext !== undefined) {
      const progress = await requestDecryption({
        store,
        passphrase,
        keyRef: this.args.key,
        ciphertext: await this.readCiphertext(this.flags.ciphertext),
        outDir,
      });
      if (this.out.mode === 'json') await this.out.json(this.view(progress));
      else
        await this.out.lines([
          ...decryptLines(progress),
          `next: each holder runs \`optimystic keygen decrypt ${this.args.key} --in DIR\`; then run this without --ciphertext`,
        ]);
      return;
    }
    let list: DecryptProgress[];
    try {
      list = await advanceDecryption({
        store,
        passphrase,
        decide: this.decider({ approve: this.flags.approve }),
        keyRef: this.args.key,
        inDir,
        outDir,
        ...(this.flags.request === undefined ? {} : { request: this.flags.request }),
      });
    } catch (error) {
      if (!isEngineError(error, 'NO_QUORUM')) throw error;
      throw shortOfPartials(error, "collect more holders' partials in the exchange directory and run again");
    }
    await this.show(list);
  }

  /** Prints the progress; once decrypted, the plaintext (stdout, or --plaintext FILE). */
  private async show(list: readonly DecryptProgress[], options: { json?: boolean } = {}): Promise<void> {
    for (const p of list)
      for (const r of p.rejected)
        process.stderr.write(
          `warning: ignored an invalid partial decryption from ${r.peerId} (holder ${r.identifier})\n`,
        );
    const done = list.find((p) => p.plaintext !== null);
    if (this.out.mode === 'json') {
      if (options.json !== false) await this.out.json(list.map((p) => this.view(p)));
    } else if (done === undefined || this.flags.plaintext !== undefined) {
      await this.out.lines(list.flatMap(decryptLines));
    }
    if (done === undefined) return;
    if (this.flags.plaintext !== undefined) {
      await writeFileAtomic(this.flags.plaintext, done.plaintext!, 0o600);
      await this.out.say(
        `request ${done.request}: decrypted with ${done.threshold} partials; wrote ${this.flags.plaintext}`,
      );
    } else if (this.out.mode !== 'json') {
      process.stdout.write(done.plaintext!);
      if (this.out.mode === 'table') {
        if (done.plaintext!.at(-1) !== 0x0a) process.stdout.write('\n');
        process.stderr.write(
          `(request ${done.request}: decrypted from ${done.partials} partial decryptions)\n`,
        );
      }
    }
  }

  /** The same steps between running nodes (see the description). */
  private async runNetworked(): Promise<void> {
    const {
      store,
      keyId,
      dir,
      passphrase,
      send: sendVia,
    } = await this.networkExchange({
      ...this.flags,
      key: this.args.key,
    });
    const ciphertext =
      this.flags.ciphertext === undefined ? undefined : await this.readCiphertext(this.flags.ciphertext);
    await this.withCeremonies(
      { unlock: false, passphraseFile: this.flags['passphrase-file'] },
      async (api) => {
        const send = (): Promise<ExchangeReport> => sendVia(api);
        const say = async (lines: string[]): Promise<void> => {
          if (this.out.mode === 'json' || lines.length === 0) return;
          // Piped: stdout is for the plaintext alone.
          if (this.out.mode === 'plain') process.stderr.write(`${lines.join('\n')}\n`);
          else await this.out.lines(lines);
        };
        let only = this.flags.request;
        const json: unknown[] = [];
        if (ciphertext !== undefined) {
          const progress = await requestDecryption({
            store,
            passphrase,
            keyRef: keyId,
            ciphertext,
            outDir: dir,
          });
          only = progress.request;
          const report = await send();
          json.push({ ...this.view(progress), sent: report.sent, failed: report.failed });
          await say([
            ...decryptLines(progress),
            ...sentLines(report),
            ...(this.flags.wait
              ? []
              : [
                  `next: each holder runs \`optimystic keygen decrypt ${this.args.key} --transport network --approve\` on its node; then run this without --ciphertext`,
                ]),
          ]);
          if (!this.flags.wait) {
            if (this.out.mode === 'json') await this.out.json(json[0]);
            return;
          }
        }
        let shortage: EngineError | undefined;
        let result: DecryptProgress[] = [];
        await this.untilDone({
          dir,
          keyId,
          wait: this.flags.wait,
          timeout: this.flags.timeout,
          what: 'decryption',
          step: async () => {
            let list: DecryptProgress[];
            try {
              list = await advanceDecryption({
                store,
                passphrase,
                decide: this.decider({ approve: this.flags.approve }),
                keyRef: keyId,
                inDir: dir,
                outDir: dir,
                ...(only === undefined ? { openOnly: true } : { request: only }),
              });
            } catch (error) {
              // A requester short of partials waits for more (or says so, without --wait).
              if (!isEngineError(error, 'NO_QUORUM')) throw error;
              shortage = error;
              return false;
            }
            shortage = undefined;
            result = list;
            const report = list.some((p) => p.wrote.length > 0) ? await send() : undefined;
            const decrypted = list.some((p) => p.plaintext !== null);
            if (!decrypted) {
              json.push(...list.map((p) => this.view(p)));
              await say([...list.flatMap(decryptLines), ...(report === undefined ? [] : sentLines(report))]);
            } else if (report !== undefined) await say(sentLines(report));
            return decrypted || list.some((p) => !p.requester && p.did.includes('partial'));
          },
        });
        if (shortage !== undefined)
          throw shortOfPartials(shortage, 'run again (or with --wait) once more holders have answered');
        if (result.some((p) => p.plaintext !== null)) {
          if (this.out.mode === 'json') await this.out.json([...json, ...result.map((p) => this.view(p))]);
          await this.show(result, { json: false });
        } else if (this.out.mode === 'json') await this.out.json(json);
      },
    );
  }

  private view(p: DecryptProgress) {
    if (p.plaintext === null) return { ...p, plaintext: null };
    let text: string | null = null;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(p.plaintext);
    } catch {
      text = null;
    }
    return { ...p, plaintext: Buffer.from(p.plaintext).toString('base64url'), text };
  }

  private async readCiphertext(path: string): Promise<ThresholdCiphertext> {
    let text: string;
    try {
      if (path === '-') {
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        text = Buffer.concat(chunks).toString('utf8');
      } else text = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new EngineError(
        code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_INPUT',
        `cannot read ${path} (${code ?? String(error)})`,
      );
    }
    try {
      return JSON.parse(text) as ThresholdCiphertext;
    } catch {
      throw new EngineError('BAD_INPUT', `${path} is not a ciphertext (not JSON)`);
    }
  }
}

/** Too few valid partials: the engine's message, the holders whose partials were invalid, what to do. */
function shortOfPartials(error: EngineError, hint: string): EngineError {
  const rejected = Array.isArray(error.details?.['rejected'])
    ? (error.details['rejected'] as { peerId: string }[])
    : [];
  return new EngineError(
    'NO_QUORUM',
    `${error.message}` +
      (rejected.length > 0
        ? `; invalid partial decryptions from ${rejected.map((r) => r.peerId).join(', ')}`
        : '') +
      `; ${hint}`,
    error.details,
  );
}
