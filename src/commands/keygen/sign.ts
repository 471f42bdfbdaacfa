import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import {
  advanceSigning,
  EngineError,
  limits,
  requestSignature,
  type ExchangeReport,
  type SignProgress,
} from '../../engine/index.js';
import {
  keyArg,
  KeygenCommand,
  keygenFlags,
  sentLines,
  signLines,
  signWaiting,
} from '../../ui/cli/keygen/index.js';

export default class KeygenSign extends KeygenCommand<typeof KeygenSign> {
  static override summary =
    'Sign with a threshold key: t holders, FROST, through files or between running nodes';
  static override description =
    'Air-gapped FROST signing in two rounds through an exchange directory; no machine ever holds the key.\n\n' +
    '1. The coordinator (anyone with the key, holder or not) starts a request: `keygen sign KEY --message ' +
    'M --out DIR` (or --file F for raw bytes). A coordinator that holds a share commits at once.\n' +
    '2. Each holder runs `keygen sign KEY --in DIR`: it shows the message, asks for approval (--approve ' +
    'when not on a terminal) and writes its nonce commitment (round one; the secret nonces stay sealed ' +
    'in its data directory).\n' +
    '3. The coordinator runs `keygen sign KEY --in DIR` again: with t commitments it writes the signing ' +
    'package (the first t holders that committed, or --signers).\n' +
    '4. The chosen holders run `keygen sign KEY --in DIR` again: each checks that the package carries the ' +
    'message it approved and its own commitment, signs, deletes its nonces and records the signature in ' +
    'its audit log (DATA/keys/audit.log).\n' +
    "5. The coordinator runs it once more: every share is checked against its holder's verifying share " +
    '(a bad one fails with BAD_SIGNATURE, exit 7, naming the holder), and the shares are aggregated into ' +
    'one signature, which is printed (hex unless --encoding) and written to sign-<R>-signature.json. For ' +
    "ed25519-sha512 keys it is an ordinary Ed25519 signature under the key's public key.\n\n" +
    'A coordinator run that cannot take its next step yet fails with NO_QUORUM (exit 6) saying whom it ' +
    'waits for, so `until optimystic keygen sign KEY --in DIR; do …; done` works. Piped, stdout is the ' +
    "signature alone once there is one. --json prints the request's progress (an array of them after " +
    'the first run), with "signature" when done.';
  static override examples = [
    {
      description: 'Coordinator: start',
      command: '<%= config.bin %> <%= command.id %> payments --message "pay 10 to bob" --out /media/usb/sign',
    },
    {
      description: 'Holder: approve and answer',
      command: '<%= config.bin %> <%= command.id %> payments --in /media/usb/sign --approve',
    },
    {
      description: 'Coordinator: package, later the signature',
      command: '<%= config.bin %> <%= command.id %> payments --in /media/usb/sign',
    },
    {
      description: 'Between running nodes: the coordinator waits for the signature…',
      command:
        '<%= config.bin %> <%= command.id %> payments --message "pay 10 to bob" --transport network --wait',
    },
    {
      description: '…while each holder approves on its own node',
      command: '<%= config.bin %> <%= command.id %> payments --transport network --approve --wait',
    },
  ];
  static override args = {
    key: keyArg,
  };
  static override flags = {
    message: Flags.string({
      char: 'm',
      description: 'start a request to sign this text (UTF-8)',
      exclusive: ['file'],
      helpValue: 'TEXT',
    }),
    file: Flags.string({
      char: 'f',
      description: 'start a request to sign the bytes of FILE',
      exclusive: ['message'],
      helpValue: 'FILE',
    }),
    in: keygenFlags.in,
    out: keygenFlags.out,
    approve: keygenFlags.approve,
    request: keygenFlags.request,
    signers: Flags.string({
      description:
        'coordinator: holders to ask (identifiers or peer ids, comma-separated) [default: the first t]',
      multiple: true,
      helpValue: 'IDS',
    }),
    encoding: Flags.option({
      options: ['hex', 'base64', 'base64url'] as const,
      default: 'hex' as const,
      description: 'how to print the signature',
    })(),
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
    const message = await this.messageBytes();
    if (message !== undefined) {
      const progress = await requestSignature({ store, passphrase, keyRef: this.args.key, message, outDir });
      if (this.out.mode === 'json') await this.out.json(progress);
      else
        await this.out.lines([
          ...signLines(progress),
          `next: each holder runs \`optimystic keygen sign ${this.args.key} --in DIR\`; then run this without --message`,
        ]);
      return;
    }
    const list = await advanceSigning({
      store,
      passphrase,
      decide: this.decider({ approve: this.flags.approve }),
      keyRef: this.args.key,
      inDir,
      outDir,
      ...(this.flags.request === undefined ? {} : { request: this.flags.request }),
      signers: this.list(this.flags.signers),
    });
    const stuck = list.find((p) => p.coordinator && p.waiting !== null && p.did.length === 0);
    const done = list.filter((p) => p.signature !== null);
    if (this.out.mode === 'json') {
      if (stuck === undefined) await this.out.json(list.map((p) => ({ ...p, signature: this.encoded(p) })));
    } else if (this.out.mode === 'plain' && done.length > 0) {
      await this.out.lines(done.map((p) => this.encoded(p)!.text));
    } else {
      const lines = list.filter((p) => p !== stuck).flatMap((p) => signLines(p));
      for (const p of done) {
        const s = this.encoded(p)!;
        lines.push(
          `signature (${this.flags.encoding}): ${s.text}`,
          `verifies under public key ${s.publicKeyHex}`,
        );
      }
      await this.out.lines(lines);
    }
    if (stuck !== undefined) {
      const w = stuck.waiting!;
      throw new EngineError(
        'NO_QUORUM',
        `request ${stuck.request}: ${signWaiting(w, (list) => list.join(', '))}; run again when their files are in the exchange directory`,
      );
    }
  }

  /**
   * The same steps between running nodes: the exchange directory is the node's for the key, and
   * after each step the node sends what is there to the other holders' nodes.
   */
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
    const message = await this.messageBytes();
    await this.withCeremonies(
      { unlock: false, passphraseFile: this.flags['passphrase-file'] },
      async (api) => {
        const send = (): Promise<ExchangeReport> => sendVia(api);
        const json: unknown[] = [];
        /** The request this run follows: the one it starts, else --request (else every open one). */
        let only = this.flags.request;
        if (message !== undefined) {
          const progress = await requestSignature({ store, passphrase, keyRef: keyId, message, outDir: dir });
          only = progress.request;
          const report = await send();
          const lines = [
            ...signLines(progress),
            ...sentLines(report),
            ...(this.flags.wait
              ? []
              : [
                  `next: each holder runs \`optimystic keygen sign ${this.args.key} --transport network --approve\` on its node; then run this without --message`,
                ]),
          ];
          if (this.out.mode === 'json') json.push({ ...progress, sent: report.sent, failed: report.failed });
          // Piped and waiting: stdout is for the signature alone.
          else if (this.out.mode === 'plain' && this.flags.wait)
            process.stderr.write(`${lines.join('\n')}\n`);
          else await this.out.lines(lines);
          if (!this.flags.wait) {
            if (this.out.mode === 'json') await this.out.json(json[0]);
            return;
          }
        }
        let stuck: SignProgress | undefined;
        const finished = await this.untilDone({
          dir,
          keyId,
          wait: this.flags.wait,
          timeout: this.flags.timeout,
          what: 'signing',
          step: async () => {
            const list = await advanceSigning({
              store,
              passphrase,
              decide: this.decider({ approve: this.flags.approve }),
              keyRef: keyId,
              inDir: dir,
              outDir: dir,
              ...(only === undefined ? { openOnly: true } : { request: only }),
              signers: this.list(this.flags.signers),
            });
            const report = list.some((p) => p.wrote.length > 0) ? await send() : undefined;
            stuck = list.find((p) => p.coordinator && p.waiting !== null && p.did.length === 0);
            const moved = list.filter((p) => p.did.length > 0 || p.waiting !== null);
            if (this.out.mode === 'json')
              json.push(...moved.map((p) => ({ ...p, signature: this.encoded(p) })));
            else {
              const { lines, signatures } = this.progressLines(moved, report, stuck);
              // Piped: progress on stderr, stdout the signature alone (as with files).
              if (this.out.mode === 'plain') {
                if (lines.length > 0) process.stderr.write(`${lines.join('\n')}\n`);
                await this.out.lines(signatures.map((e) => e.text));
              } else await this.out.lines(lines);
            }
            return list.some(
              (p) =>
                p.signature !== null ||
                (!p.coordinator && (p.did.includes('signed') || p.did.includes('not-chosen'))),
            );
          },
        });
        if (!finished && stuck !== undefined) {
          const w = stuck.waiting!;
          throw new EngineError(
            'NO_QUORUM',
            `request ${stuck.request}: ${signWaiting(w, (list) => list.join(', '))}; run again (or with --wait) once their nodes have sent them`,
          );
        }
        if (this.out.mode === 'json') await this.out.json(json);
      },
    );
  }

  private progressLines(
    list: readonly SignProgress[],
    report: ExchangeReport | undefined,
    stuck: SignProgress | undefined,
  ): { lines: string[]; signatures: NonNullable<ReturnType<KeygenSign['encoded']>>[] } {
    const lines = list.filter((p) => p !== stuck || this.flags.wait).flatMap((p) => signLines(p));
    if (report !== undefined) lines.push(...sentLines(report));
    const signatures = list.map((p) => this.encoded(p)).filter((e) => e !== null);
    const shown = this.out.mode === 'plain' ? [] : signatures;
    for (const e of shown)
      lines.push(
        `signature (${this.flags.encoding}): ${e.text}`,
        `verifies under public key ${e.publicKeyHex}`,
      );
    return { lines, signatures };
  }

  private encoded(
    p: SignProgress,
  ): { text: string; hex: string; base64: string; base64url: string; publicKeyHex: string } | null {
    if (p.signature === null) return null;
    const bytes = Buffer.from(p.signature.signature, 'base64url');
    const forms = {
      hex: bytes.toString('hex'),
      base64: bytes.toString('base64'),
      base64url: p.signature.signature,
    };
    return {
      text: forms[this.flags.encoding],
      ...forms,
      publicKeyHex: Buffer.from(p.signature.publicKey, 'base64url').toString('hex'),
    };
  }

  private async messageBytes(): Promise<Uint8Array | undefined> {
    if (this.flags.message !== undefined) return new TextEncoder().encode(this.flags.message);
    if (this.flags.file === undefined) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.flags.file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new EngineError(
        code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_INPUT',
        `cannot read ${this.flags.file} (${code ?? String(error)})`,
      );
    }
    if (bytes.length > limits.thresholdMessageBytesMax)
      throw new EngineError(
        'TOO_LARGE',
        `${this.flags.file} is over ${limits.thresholdMessageBytesMax} bytes`,
      );
    return new Uint8Array(bytes);
  }
}
