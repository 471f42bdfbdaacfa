import { readFile, stat } from 'node:fs/promises';
import { Args, Flags } from '@oclif/core';
import {
  checkPublicKey,
  EngineError,
  encryptToGroup,
  isEngineError,
  limits,
  systemRng,
  writeFileAtomic,
  type ThresholdPublicKey,
} from '../../engine/index.js';
import { KeygenCommand } from '../../ui/cli/keygen/index.js';

export default class KeygenEncrypt extends KeygenCommand<typeof KeygenEncrypt> {
  static override summary = 'Encrypt to a threshold decryption key (anyone with the public key can)';
  static override description =
    'Reads the plaintext from --in FILE or stdin (up to 1 MiB) and prints the ciphertext as JSON: an ' +
    'ElGamal key encapsulation to the group key in ristretto255, ChaCha20-Poly1305 under a key derived ' +
    'from it, and a proof that the sender knows the encapsulation secret (so no one can re-purpose the ' +
    'ciphertext). Only t holders together can decrypt it: `keygen decrypt KEY --ciphertext FILE`.\n\n' +
    'KEY is a key in this data directory (id, id prefix or label) or the path of a public key file, such ' +
    'as the output of `keygen show KEY --json`. No passphrase is needed. --associated-data binds a text ' +
    'to the ciphertext without encrypting it (it must be presented unchanged to decrypt).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> vault --in secret.txt > secret.ct.json',
    {
      description: 'With only the public key file',
      command:
        'echo -n "launch code" | <%= config.bin %> <%= command.id %> ./vault.key.json --out code.ct.json',
    },
  ];
  static override args = {
    key: Args.string({
      ignoreStdin: true,
      description: 'key id, id prefix, label, or public key file',
      required: true,
    }),
  };
  static override flags = {
    in: Flags.string({ description: 'plaintext file (default: stdin)', helpValue: 'FILE' }),
    out: Flags.string({
      description: 'write the ciphertext JSON to FILE instead of stdout',
      helpValue: 'FILE',
    }),
    'associated-data': Flags.string({
      description: 'text bound to the ciphertext, not secret',
      helpValue: 'TEXT',
    }),
  };

  override async run(): Promise<void> {
    const publicKey = await this.publicKey(this.args.key);
    const plaintext = await this.plaintext();
    const ad = this.flags['associated-data'];
    const ciphertext = encryptToGroup(
      publicKey,
      plaintext,
      systemRng,
      ad === undefined ? undefined : new TextEncoder().encode(ad),
    );
    if (this.flags.out !== undefined) {
      await writeFileAtomic(this.flags.out, `${JSON.stringify(ciphertext, null, 2)}\n`, 0o644);
      if (this.out.mode === 'json') await this.out.json({ file: this.flags.out, keyId: ciphertext.keyId });
      else await this.out.say(`wrote ${this.flags.out} (for key ${ciphertext.keyId})`);
      return;
    }
    await this.out.json(ciphertext);
  }

  private async publicKey(ref: string): Promise<ThresholdPublicKey> {
    try {
      return (await this.keyStore().resolveKey(ref)).publicKey;
    } catch (error) {
      if (!isEngineError(error, 'NOT_FOUND') || !(await isFile(ref))) throw error;
    }
    const text = await readFile(ref, 'utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new EngineError('BAD_INPUT', `${ref} is not JSON`);
    }
    const v = value as { key?: unknown; publicKey?: unknown; format?: unknown };
    const candidate = v?.format === 'optimystic-threshold-key' ? v : (v?.key ?? v?.publicKey);
    return checkPublicKey(candidate).json;
  }

  private async plaintext(): Promise<Uint8Array> {
    const max = limits.thresholdPlaintextBytesMax;
    if (this.flags.in !== undefined) {
      const info = await stat(this.flags.in).catch(() => undefined);
      if (info === undefined || !info.isFile())
        throw new EngineError('NOT_FOUND', `no file ${this.flags.in}`);
      if (info.size > max) throw new EngineError('TOO_LARGE', `${this.flags.in} is over ${max} bytes`);
      return new Uint8Array(await readFile(this.flags.in));
    }
    if (process.stdin.isTTY === true)
      throw new EngineError('BAD_INPUT', 'give the plaintext with --in FILE or on stdin (not a terminal)');
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of process.stdin) {
      const buffer = chunk as Buffer;
      length += buffer.length;
      if (length > max) throw new EngineError('TOO_LARGE', `the plaintext is over ${max} bytes`);
      chunks.push(buffer);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}
