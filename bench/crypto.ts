// Threshold crypto figures, NDJSON, each beside the raw cost of the curve operation underneath it,
// measured in the same run: key ceremonies for (t, n) = (3, 5), (7, 10), (11, 16) in one process,
// FROST signing and threshold decryption latency for t = 3 and t = 11, the air-gapped file edge for
// (3, 5), and one scrypt unlock at the production cost. Not a test: nothing asserts.
//
// Standalone: `node --import tsx bench/crypto.ts`; also run by `npm run bench` (bench/run.ts).
// BENCH_CRYPTO_RUNS scales the repetitions of the latency figures (default 20).
import '../src/shim.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  aggregateSignature,
  combinePartialDecryptions,
  commitToSign,
  createParticipantCard,
  createPartialDecryption,
  createProposal,
  createSigningPackage,
  encryptToGroup,
  encryptionKeyFromIdentity,
  getSuite,
  Identity,
  joinCeremony,
  KeyStore,
  ManualClock,
  openWithPassphrase,
  proposeCeremony,
  publishCard,
  sealWithPassphrase,
  SeededRng,
  signPackage,
  stepCeremonyFiles,
  stepCeremony,
  verifyGroupSignature,
  verifySignature,
  type CeremonyKeys,
  type CeremonyMessage,
  type CeremonyState,
  type KeyPurpose,
  type Rng,
  type SuiteId,
  type ThresholdPublicKey,
  type ThresholdShare,
} from '../src/engine/index.js';

const runs = Number(process.env['BENCH_CRYPTO_RUNS'] ?? 20);
const rng: Rng = new SeededRng(20_240_611);

function emit(record: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Mean milliseconds per call of `work` over `count` calls, after a short warm-up. */
function perOp(count: number, work: (i: number) => void): number {
  for (let i = 0; i < Math.min(5, count); i++) work(i);
  const start = performance.now();
  for (let i = 0; i < count; i++) work(i);
  return (performance.now() - start) / count;
}

function scalar(suiteId: SuiteId): bigint {
  const suite = getSuite(suiteId);
  return suite.Fn.create(BigInt(`0x${Buffer.from(rng.bytes(48)).toString('hex')}`));
}

// --- baselines: raw operations ------------------------------------------------------------------

interface Baselines {
  [name: string]: number;
}

function measureBaselines(): Baselines {
  const out: Baselines = {};
  for (const id of ['ed25519-sha512', 'ristretto255-sha512'] as const) {
    const suite = getSuite(id);
    const scalars = Array.from({ length: 64 }, () => scalar(id));
    const points = scalars.map((s) => suite.base.multiply(s));
    const curve = id === 'ed25519-sha512' ? 'ed25519' : 'ristretto255';
    out[`${curve}.multiply.base`] = perOp(200, (i) => suite.base.multiply(scalars[i % 64]!));
    out[`${curve}.multiply.point`] = perOp(200, (i) => points[i % 64]!.multiply(scalars[(i + 1) % 64]!));
    out[`${curve}.multiplyUnsafe.point`] = perOp(200, (i) =>
      points[i % 64]!.multiplyUnsafe(scalars[(i + 1) % 64]!),
    );
    out[`${curve}.add`] = perOp(2000, (i) => points[i % 64]!.add(points[(i + 1) % 64]!));
  }
  const identity = Identity.generate(rng);
  const message = rng.bytes(64);
  const signature = identity.sign(message);
  out['ed25519.sign.node-crypto'] = perOp(500, () => identity.sign(message));
  out['ed25519.verify.node-crypto'] = perOp(500, () =>
    verifySignature(identity.publicKey, message, signature),
  );
  for (const [name, ms] of Object.entries(out))
    emit({ bench: `crypto.raw.${name}`, msPerOp: round(ms, 4), opsPerSec: round(1000 / ms, 0) });
  return out;
}

function report(
  name: string,
  ms: number,
  baseline: { name: string; ms: number },
  extra: Record<string, unknown> = {},
): void {
  emit({
    bench: name,
    ms: round(ms),
    ...extra,
    baseline: baseline.name,
    baselineMs: round(baseline.ms, 4),
    // How many of the baseline operation the figure costs: holds on a faster or slower machine.
    ratio: round(ms / baseline.ms, 1),
  });
}

// --- ceremonies -----------------------------------------------------------------------------------

interface Generated {
  publicKey: ThresholdPublicKey;
  shares: ThresholdShare[];
}

/** One key ceremony among n participants in this process: every broadcast reaches every other. */
function ceremony(
  suite: SuiteId,
  purpose: KeyPurpose,
  t: number,
  n: number,
): { ms: number; perParticipantMs: number[]; key: Generated } {
  const members = Array.from({ length: n }, () => {
    const identity = Identity.generate(rng);
    const encryption = encryptionKeyFromIdentity(identity);
    return {
      identity,
      keys: { identity, encryption } satisfies CeremonyKeys,
      card: createParticipantCard(identity, encryption.publicKey),
    };
  });
  const nowMs = 1_700_000_000_000;
  const spent = new Map<string, number>(members.map((m) => [m.identity.peerId, 0]));
  const start = performance.now();
  const proposal = createProposal(
    members[0]!.identity,
    {
      kind: 'dkg',
      suite,
      purpose,
      threshold: t,
      roster: members.map((m) => m.card),
      expiresAtMs: nowMs + 3_600_000,
    },
    rng,
  );
  const states = new Map<string, CeremonyState>();
  const queue: { to: string; message: CeremonyMessage }[] = [];
  const apply = (m: (typeof members)[number], input: Parameters<typeof stepCeremony>[1]): void => {
    const t0 = performance.now();
    const step = stepCeremony(states.get(m.identity.peerId)!, input, m.keys);
    spent.set(m.identity.peerId, spent.get(m.identity.peerId)! + performance.now() - t0);
    states.set(m.identity.peerId, step.state);
    for (const e of step.effects)
      if (e.type === 'Broadcast')
        for (const other of members)
          if (other !== m) queue.push({ to: other.identity.peerId, message: e.message });
  };
  for (const m of members) states.set(m.identity.peerId, joinCeremony(proposal, m.keys, rng, nowMs));
  for (const m of members) apply(m, { type: 'Approve' });
  const byPeer = new Map(members.map((m) => [m.identity.peerId, m] as const));
  while (queue.length > 0) {
    const { to, message } = queue.shift()!;
    apply(byPeer.get(to)!, { type: 'Receive', message });
  }
  const ms = performance.now() - start;
  const results = [...states.values()].map((s) => s.result);
  if (results.some((r) => r === null)) throw new Error('the benchmark ceremony did not complete');
  return {
    ms,
    perParticipantMs: [...spent.values()],
    key: { publicKey: results[0]!.publicKey, shares: results.map((r) => r!.share!) },
  };
}

// --- use ----------------------------------------------------------------------------------------

function signOnce(
  key: Generated,
  t: number,
  message: Uint8Array,
): { total: number; holderSign: number; aggregate: number } {
  const signers = key.shares.slice(0, t);
  const start = performance.now();
  const rounds = signers.map((share) => ({ share, ...commitToSign(key.publicKey, share, rng) }));
  const pkg = createSigningPackage(
    key.publicKey,
    message,
    rounds.map((r) => r.commitment),
  );
  const t0 = performance.now();
  const shares = rounds.map((r) => signPackage(key.publicKey, r.share, r.nonces, pkg));
  const t1 = performance.now();
  const signature = aggregateSignature(key.publicKey, pkg, shares);
  const end = performance.now();
  if (!verifyGroupSignature(key.publicKey, message, signature)) throw new Error('bad benchmark signature');
  return { total: end - start, holderSign: (t1 - t0) / t, aggregate: end - t1 };
}

function decryptOnce(
  key: Generated,
  t: number,
  plaintext: Uint8Array,
): { total: number; encrypt: number; partial: number; combine: number } {
  const start = performance.now();
  const ciphertext = encryptToGroup(key.publicKey, plaintext, rng);
  const t0 = performance.now();
  const partials = key.shares
    .slice(0, t)
    .map((share) => createPartialDecryption(key.publicKey, share, ciphertext, rng));
  const t1 = performance.now();
  const { plaintext: out } = combinePartialDecryptions(key.publicKey, ciphertext, partials);
  const end = performance.now();
  if (Buffer.compare(Buffer.from(out), Buffer.from(plaintext)) !== 0)
    throw new Error('bad benchmark decryption');
  return { total: end - start, encrypt: t0 - start, partial: (t1 - t0) / t, combine: end - t1 };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

// --- the file edge ------------------------------------------------------------------------------

/** A (3, 5) ceremony through keystores and one exchange directory, every step as `keygen ceremony step` runs it. */
async function fileCeremony(costLog2: number): Promise<{ ms: number; steps: number }> {
  const root = await mkdtemp(join(tmpdir(), 'optimystic-bench-keygen-'));
  try {
    const exchange = join(root, 'exchange');
    const passphrase = () => Promise.resolve('bench passphrase');
    const stores = Array.from(
      { length: 5 },
      (_, i) => new KeyStore(join(root, `p${i}`), { sealCostLog2: costLog2, rng, clock: new ManualClock() }),
    );
    for (const store of stores) await publishCard({ store, passphrase, outDir: exchange });
    const start = performance.now();
    await proposeCeremony({
      store: stores[0]!,
      passphrase,
      outDir: exchange,
      kind: 'dkg',
      cardsDir: exchange,
      threshold: 3,
      expiresInMs: 3_600_000,
    });
    let steps = 1;
    const done = new Set<number>();
    for (let round = 0; round < 8 && done.size < 5; round++) {
      for (let i = 0; i < 5; i++) {
        if (done.has(i)) continue;
        const p = await stepCeremonyFiles({
          store: stores[i]!,
          passphrase,
          decide: () => Promise.resolve({ approve: true }),
          inDir: exchange,
          outDir: exchange,
        });
        steps++;
        if (p.phase === 'complete') done.add(i);
      }
    }
    if (done.size < 5) throw new Error('the file ceremony did not complete');
    return { ms: performance.now() - start, steps };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const raw = measureBaselines();
  const edMul = { name: 'crypto.raw.ed25519.multiply.point', ms: raw['ed25519.multiply.point']! };
  const riMul = { name: 'crypto.raw.ristretto255.multiply.point', ms: raw['ristretto255.multiply.point']! };

  const signingKeys = new Map<number, Generated>();
  for (const [t, n] of [
    [3, 5],
    [7, 10],
    [11, 16],
  ] as const) {
    const { ms, perParticipantMs, key } = ceremony('ed25519-sha512', 'sign', t, n);
    report(`crypto.ceremony.ed25519.t${t}n${n}`, ms, edMul, {
      t,
      n,
      perParticipantMsMean: round(mean(perParticipantMs)),
      perParticipantMsMax: round(Math.max(...perParticipantMs)),
    });
    signingKeys.set(t, key);
  }
  const decryptionKeys = new Map<number, Generated>();
  for (const [t, n] of [
    [3, 5],
    [11, 16],
  ] as const) {
    const { ms, perParticipantMs, key } = ceremony('ristretto255-sha512', 'decrypt', t, n);
    report(`crypto.ceremony.ristretto255.t${t}n${n}`, ms, riMul, {
      t,
      n,
      perParticipantMsMean: round(mean(perParticipantMs)),
    });
    decryptionKeys.set(t, key);
  }

  const message = new TextEncoder().encode('benchmark message: pay 10 to bob');
  for (const t of [3, 11]) {
    const key = signingKeys.get(t)!;
    const count = t === 3 ? runs : Math.max(3, Math.round(runs / 4));
    signOnce(key, t, message); // warm-up
    const samples = Array.from({ length: count }, () => signOnce(key, t, message));
    report(`crypto.frost.sign.ed25519.t${t}`, mean(samples.map((s) => s.total)), edMul, {
      t,
      n: key.publicKey.holders.length,
      runs: count,
      holderSignMs: round(mean(samples.map((s) => s.holderSign))),
      aggregateMs: round(mean(samples.map((s) => s.aggregate))),
    });
  }
  const plaintext = new TextEncoder().encode('a 32-byte data key, for example.');
  for (const t of [3, 11]) {
    const key = decryptionKeys.get(t)!;
    const count = t === 3 ? runs : Math.max(3, Math.round(runs / 4));
    decryptOnce(key, t, plaintext);
    const samples = Array.from({ length: count }, () => decryptOnce(key, t, plaintext));
    report(
      `crypto.threshold.decrypt.ristretto255.t${t}`,
      mean(samples.map((s) => s.partial * t + s.combine)),
      riMul,
      {
        t,
        n: key.publicKey.holders.length,
        runs: count,
        encryptMs: round(mean(samples.map((s) => s.encrypt))),
        partialMs: round(mean(samples.map((s) => s.partial))),
        combineMs: round(mean(samples.map((s) => s.combine))),
      },
    );
  }

  // The air-gapped edge: files, JSON and sealing around the same (3, 5) ceremony (test-grade scrypt).
  const files = await fileCeremony(10);
  emit({
    bench: 'crypto.ceremony.files.ed25519.t3n5',
    ms: round(files.ms),
    steps: files.steps,
    scryptCostLog2: 10,
    msPerStep: round(files.ms / files.steps),
  });
  // What each sealed file costs to open at the production scrypt cost (a step opens and seals a few).
  const secret = rng.bytes(64);
  const t0 = performance.now();
  const envelope = await sealWithPassphrase(secret, 'bench passphrase', rng);
  const t1 = performance.now();
  await openWithPassphrase(envelope, 'bench passphrase');
  const t2 = performance.now();
  emit({
    bench: 'crypto.seal.scrypt',
    scryptCostLog2: envelope.kdf.costLog2,
    sealMs: round(t1 - t0, 1),
    openMs: round(t2 - t1, 1),
  });
}

await main();
