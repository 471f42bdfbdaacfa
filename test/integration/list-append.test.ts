import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/engine/node/embedded.js';
import type { RunningNode } from '../../src/engine/node/node.js';
import {
  checkListAppend,
  listCollection,
  runListAppend,
  type ListAppendRun,
} from '../helpers/list-append.js';
import { startMesh } from '../helpers/mesh.js';

/**
 * List-append histories (test/helpers/list-append.ts) from concurrent clients, checked for lost
 * writes and serializability anomalies: on an embedded data directory and across a network of three
 * nodes, every key a diary, transactions spanning several of them.
 */
describe('list-append histories are serializable and lose nothing', function () {
  this.timeout(180_000);
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-list-append-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  function verdict(run: ListAppendRun): void {
    for (const final of run.finalReads) expect(final).to.deep.equal(run.finalReads[0]);
    const result = checkListAppend(run.history, run.finalReads[0]!);
    expect(result.anomalies, JSON.stringify(result.anomalies.slice(0, 5))).to.deep.equal([]);
    // A history with no commits, or no contention, would prove little.
    expect(run.ok).to.be.greaterThan(run.history.length / 2);
    expect(result.edges).to.be.greaterThan(run.ok);
    const appended = [...run.finalReads[0]!.values()].reduce((n, list) => n + list.length, 0);
    expect(appended).to.be.greaterThan(0);
  }

  it('on an embedded data directory, 8 clients', async () => {
    const db = await openDatabase({ dataDir: join(root, 'solo') });
    try {
      for (let k = 0; k < 4; k++) await db.createCollection(listCollection(`k${k}`), 'diary');
      verdict(await runListAppend([db], { clients: 8, transactions: 400, keys: 4, seed: 11 }));
    } finally {
      await db.close();
    }
  });

  it('across three nodes, 6 clients through different nodes', async () => {
    const nodes: RunningNode[] = [];
    try {
      await startMesh(nodes, root, 3);
      for (let k = 0; k < 4; k++)
        await nodes[k % 3]!.database.createCollection(listCollection(`k${k}`), 'diary');
      verdict(
        await runListAppend(
          nodes.map((node) => node.database),
          { clients: 6, transactions: 150, keys: 4, seed: 12 },
        ),
      );
    } finally {
      for (const node of nodes) await node.close().catch(() => undefined);
    }
  });
});
