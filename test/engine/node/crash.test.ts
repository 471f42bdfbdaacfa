import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { defaultNodeConfig } from '../../../src/engine/config/schema.js';
import { openDatabase, type Database } from '../../../src/engine/index.js';
import { startNode } from '../../../src/engine/node/node.js';

const embeddedWriter = fileURLToPath(new URL('../../fixtures/crash-writer.ts', import.meta.url));
const nodeWriter = fileURLToPath(new URL('../../fixtures/crash-node-writer.ts', import.meta.url));
const seed = Number(process.env['OPTIMYSTIC_SEED'] ?? 20261124);
const rounds = Number(process.env['OPTIMYSTIC_CRASH_ROUNDS'] ?? 20);
/** A node takes longer to start (libp2p, consensus), so its run kills it fewer times by default. */
const nodeRounds = Number(process.env['OPTIMYSTIC_CRASH_NODE_ROUNDS'] ?? 8);

/** What the data dir holds after a round, read the way the writer wrote it. */
interface Contents {
  readonly counter: number;
  readonly keys: number[];
  readonly journal: number[];
}

async function contentsOf(db: Pick<Database, 'get' | 'scan' | 'read'>): Promise<Contents> {
  const counter = await db.get('bank', 'counter');
  const keys: number[] = [];
  for await (const { key } of db.scan('bank', { from: 'k', to: 'k999999' })) keys.push(Number(key.slice(1)));
  const journal: number[] = [];
  for await (const { value } of db.read('journal')) journal.push((value as { i: number }).i);
  return { counter: counter.found ? (counter.value as { n: number }).n : 0, keys, journal };
}

/** Runs the writer until it has acknowledged a few transactions, then SIGKILLs it after a random delay. */
function runAndKill(writer: string, dataDir: string, rng: SeededRng): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let buffer = '';
    let stderr = '';
    let scheduled = false;
    const ackTarget = 1 + rng.int(40);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
      }
      if (!scheduled && acked.length >= ackTarget) {
        scheduled = true;
        setTimeout(() => child.kill('SIGKILL'), rng.int(25));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`writer exited on its own (code ${code}): ${stderr}`));
    });
  });
}

const writers: {
  readonly name: string;
  readonly writer: string;
  readonly rounds: number;
  readonly open: (
    dataDir: string,
  ) => Promise<{ db: Pick<Database, 'get' | 'scan' | 'read'>; close: () => Promise<void> }>;
}[] = [
  {
    name: 'embedded',
    writer: embeddedWriter,
    rounds,
    open: async (dataDir) => {
      const db = await openDatabase({ dataDir });
      return { db, close: () => db.close() };
    },
  },
  {
    name: 'a node alone in its network',
    writer: nodeWriter,
    rounds: nodeRounds,
    open: async (dataDir) => {
      const node = await startNode({
        dataDir,
        config: { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] },
        version: 'test',
      });
      return { db: node.database, close: () => node.close() };
    },
  },
];

for (const { name, writer, rounds, open } of writers) {
  describe(`crash safety (SIGKILL at random points): ${name}`, function () {
    this.timeout(300_000);
    let dataDir: string;
    before(async () => (dataDir = await mkdtemp(join(tmpdir(), 'optimystic-crash-'))));
    after(async () => rm(dataDir, { recursive: true, force: true }));

    it(`keeps every acknowledged transaction and never shows half of one, over ${rounds} kills (seed ${seed})`, async () => {
      const rng = new SeededRng(seed);
      const everAcked = new Set<number>();
      for (let round = 1; round <= rounds; round++) {
        const acked = await runAndKill(writer, dataDir, rng);
        acked.forEach((i) => everAcked.add(i));
        const { db, close } = await open(dataDir);
        try {
          const { counter: n, keys, journal } = await contentsOf(db);
          const context = `round ${round}, seed ${seed} (replay with OPTIMYSTIC_SEED=${seed})`;
          // Atomic: the counter, the keys and the journal always move together.
          expect(keys, context).to.deep.equal([...Array(n).keys()]);
          expect(journal, context).to.deep.equal([...Array(n).keys()]);
          // Durable: everything acknowledged is there.
          const missing = [...everAcked].filter((i) => i >= n);
          expect(missing, `acknowledged but lost, ${context}`).to.deep.equal([]);
        } finally {
          await close();
        }
      }
      expect(everAcked.size).to.be.greaterThan(rounds);
    });
  });
}
