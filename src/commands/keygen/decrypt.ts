import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import {
  advanceDecryption,
  EngineError,
  isEngineError,
  requestDecryption,
  writeFileAtomic,
  type DecryptProgress,
  type ThresholdCiphertext,
} from '../../engine/index.js';
import { decryptLines, keyArg, KeygenCommand, keygenFlags } from '../../ui/cli/keygen/index.js';

export default class KeygenDecrypt extends KeygenCommand<typeof KeygenDecrypt> {
  static override summary =
    'Decrypt with a threshold key: t holders answer with partial decryptions, through files';
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
    'and "text" (when it is UTF-8) once decrypted.';
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
    transport: keygenFlags.transport,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    this.requireFiles(this.flags.transport);
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
      const rejected = Array.isArray(error.details?.['rejected'])
        ? (error.details['rejected'] as { peerId: string }[])
        : [];
      throw new EngineError(
        'NO_QUORUM',
        `${error.message}` +
          (rejected.length > 0
            ? `; invalid partial decryptions from ${rejected.map((r) => r.peerId).join(', ')}`
            : '') +
          "; collect more holders' partials in the exchange directory and run again",
        error.details,
      );
    }
    for (const p of list)
      for (const r of p.rejected)
        process.stderr.write(
          `warning: ignored an invalid partial decryption from ${r.peerId} (holder ${r.identifier})\n`,
        );
    const done = list.find((p) => p.plaintext !== null);
    if (this.out.mode === 'json') {
      await this.out.json(list.map((p) => this.view(p)));
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
