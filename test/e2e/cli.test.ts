/**
 * End-to-end tests of the real CLI: every case spawns the built binary (`node bin/run.js`) on a
 * temporary data directory and checks exit codes, error codes (never messages) and what was written.
 *
 * The `before` hook runs `npm run build` when dist/ is missing or older than src/. Set
 * OPTIMYSTIC_CLI_ROOT to test another build (a directory holding bin/run.js, dist/ and package.json);
 * then nothing is built.
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call --
   the tests read the CLI's JSON output and assert its shape field by field */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { openDatabase } from '../../src/engine/index.js';
import { memberPrefix } from '../../src/engine/node/store-keys.js';
import { LevelRawStore } from '../../src/engine/storage/level-store.js';
import { buildIfStale, cliRoot } from '../helpers/built-cli.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  readonly data: string;
  /** Bytes for stdin; stdin is closed at once when absent. */
  readonly input?: string | Buffer;
  readonly env?: Readonly<Record<string, string>>;
}

/** The environment of every spawned CLI: ours minus any OPTIMYSTIC_* setting, so runs are isolated. */
function cleanEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('OPTIMYSTIC_') && key !== 'NODE_ENV') env[key] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

function startCli(args: readonly string[], options: RunOptions) {
  const child = spawn(process.execPath, [join(cliRoot, 'bin', 'run.js'), ...args], {
    cwd: cliRoot,
    env: cleanEnv({ OPTIMYSTIC_DATA: options.data, ...options.env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => undefined); // the CLI may exit before reading all of stdin
  child.stdin.end(options.input);
  return child;
}

function cli(args: readonly string[], options: RunOptions): Promise<Run> {
  const child = startCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stdout of a successful run, parsed as one JSON value. */
function okJson(run: Run): any {
  expect(run.code, `exit code (stdout: ${run.stdout.slice(0, 300)}; stderr: ${run.stderr})`).to.equal(0);
  return JSON.parse(run.stdout);
}

/** stdout parsed as NDJSON. */
function lines(run: Run): any[] {
  return run.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);
}

/** A --json failure: the exit code, and exactly one JSON error document on stdout with the code. */
function expectJsonError(run: Run, code: string, exit: number, what: string): void {
  expect(run.code, `${what}: exit code (stdout: ${run.stdout.slice(0, 300)})`).to.equal(exit);
  const out = lines(run);
  expect(out, `${what}: stdout`).to.have.length(1);
  expect(out[0].error.code, `${what}: error code`).to.equal(code);
  expect(out[0].error.message, `${what}: message`).to.be.a('string').and.not.include('\n');
}

/** A failure without --json: the exit code, nothing on stdout, and one line on stderr. */
function expectOneLineError(run: Run, exit: number, what: string): void {
  expect(run.code, `${what}: exit code`).to.equal(exit);
  expect(run.stdout, `${what}: stdout`).to.equal('');
  expect(run.stderr.trimEnd().split('\n'), `${what}: stderr (${run.stderr})`).to.have.length(1);
}

/** Everything a data directory holds, as the CLI reports it: collections with revisions, and contents. */
async function snapshot(data: string): Promise<unknown> {
  const collections = okJson(await cli(['collection', 'list', '--json'], { data })) as {
    name: string;
    kind: string;
  }[];
  const contents: Record<string, unknown> = {};
  for (const { name, kind } of collections) {
    const run = await cli(['collection', kind === 'tree' ? 'scan' : 'read', name, '--json'], { data });
    expect(run.code).to.equal(0);
    contents[name] = lines(run);
  }
  return { collections, contents };
}

const deepJson = `${'['.repeat(100)}${']'.repeat(100)}`;
const bigString = JSON.stringify('x'.repeat(70 * 1024));
const unknownBlockId = 'A'.repeat(43);

describe('optimystic CLI, end to end through the built binary', function () {
  this.timeout(120_000);
  let tmp: string;

  before(function () {
    this.timeout(300_000);
    buildIfStale();
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-e2e-'));
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  const freshDir = (name: string): string => join(tmp, name);

  describe('happy paths with --json', () => {
    let data: string;
    let revAfterFirstPut: number;

    before(() => {
      data = freshDir('happy');
    });

    it('creates, lists and describes collections', async () => {
      const tree = okJson(
        await cli(['collection', 'create', 'accounts', '--type', 'tree', '--json'], { data }),
      );
      expect(tree).to.include({ name: 'accounts', kind: 'tree' });
      const diary = okJson(
        await cli(['collection', 'create', 'events', '--type', 'diary', '--json'], { data }),
      );
      expect(diary).to.include({ name: 'events', kind: 'diary' });

      const list = okJson(await cli(['collection', 'list', '--json'], { data })) as {
        name: string;
        kind: string;
      }[];
      expect(list.map((c) => [c.name, c.kind])).to.have.deep.members([
        ['accounts', 'tree'],
        ['events', 'diary'],
      ]);

      const info = okJson(await cli(['collection', 'info', 'accounts', '--json'], { data }));
      expect(info).to.include({ name: 'accounts', kind: 'tree' });
      expect(info.rev).to.be.a('number');
      for (const id of [info.id, info.root, info.tail]) expect(id).to.match(/^[A-Za-z0-9_-]{43}$/);
    });

    it('puts, gets, scans and deletes tree keys, and reads the past with --at', async () => {
      const put = okJson(
        await cli(['collection', 'put', 'accounts', 'alice', '{"balance":100}', '--json'], { data }),
      );
      expect(put).to.include({ collection: 'accounts', key: 'alice' });
      expect(put.rev).to.be.a('number');
      expect(put.trx).to.be.a('string');
      revAfterFirstPut = put.rev as number;
      okJson(await cli(['collection', 'put', 'accounts', 'bob', '{"balance":5}', '--json'], { data }));
      okJson(await cli(['collection', 'put', 'accounts', 'carol', '"text"', '--json'], { data }));
      const second = okJson(
        await cli(['collection', 'put', 'accounts', 'alice', '{"balance":50}', '--json'], { data }),
      );
      expect(second.rev).to.be.greaterThan(revAfterFirstPut);

      const got = okJson(await cli(['collection', 'get', 'accounts', 'alice', '--json'], { data }));
      expect(got).to.deep.include({ key: 'alice', found: true, value: { balance: 50 } });
      const past = okJson(
        await cli(['collection', 'get', 'accounts', 'alice', '--at', String(revAfterFirstPut), '--json'], {
          data,
        }),
      );
      expect(past.value).to.deep.equal({ balance: 100 });

      const scan = await cli(['collection', 'scan', 'accounts', '--json'], { data });
      expect(scan.code).to.equal(0);
      expect(lines(scan)).to.deep.equal([
        { key: 'alice', value: { balance: 50 } },
        { key: 'bob', value: { balance: 5 } },
        { key: 'carol', value: 'text' },
      ]);
      const range = lines(
        await cli(['collection', 'scan', 'accounts', '--from', 'b', '--to', 'c', '--json'], { data }),
      );
      expect(range.map((e) => e.key)).to.deep.equal(['bob']);
      const tail = lines(
        await cli(['collection', 'scan', 'accounts', '--reverse', '--limit', '2', '--json'], { data }),
      );
      expect(tail.map((e) => e.key)).to.deep.equal(['carol', 'bob']);
      const then = lines(
        await cli(['collection', 'scan', 'accounts', '--at', String(revAfterFirstPut), '--json'], { data }),
      );
      expect(then).to.deep.equal([{ key: 'alice', value: { balance: 100 } }]);

      const del = okJson(await cli(['collection', 'del', 'accounts', 'bob', '--json'], { data }));
      expect(del).to.include({ key: 'bob', deleted: true });
      const again = okJson(await cli(['collection', 'del', 'accounts', 'bob', '--json'], { data }));
      expect(again).to.include({ key: 'bob', deleted: false });
      expectJsonError(
        await cli(['collection', 'get', 'accounts', 'bob', '--json'], { data }),
        'NOT_FOUND',
        4,
        'get deleted key',
      );
    });

    it('appends to and reads a diary, forwards, backwards and from an index', async () => {
      for (const [i, entry] of ['{"n":0}', '{"n":1}', '{"n":2}'].entries()) {
        const appended = okJson(await cli(['collection', 'append', 'events', entry, '--json'], { data }));
        expect(appended).to.include({ collection: 'events', index: i });
      }
      expect(lines(await cli(['collection', 'read', 'events', '--json'], { data }))).to.deep.equal([
        { index: 0, value: { n: 0 } },
        { index: 1, value: { n: 1 } },
        { index: 2, value: { n: 2 } },
      ]);
      const from = lines(await cli(['collection', 'read', 'events', '--from', '1', '--json'], { data }));
      expect(from.map((e) => e.index)).to.deep.equal([1, 2]);
      const newest = lines(
        await cli(['collection', 'read', 'events', '--reverse', '--limit', '2', '--json'], { data }),
      );
      expect(newest.map((e) => e.index)).to.deep.equal([2, 1]);
    });

    it('runs tx lines concurrently, prints results in input order, and exits with the first failure', async () => {
      const puts = Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({
          actions: [
            { collection: 'accounts', op: 'put', key: `k${String(i).padStart(2, '0')}`, value: { v: i } },
          ],
        }),
      );
      const ok = await cli(['tx', '--concurrency', '4'], { data, input: `${puts.join('\n')}\n` });
      expect(ok.code).to.equal(0);
      const results = lines(ok);
      expect(results).to.have.length(12);
      results.forEach((result, i) => {
        expect(result.ok, `line ${i + 1}`).to.equal(true);
        expect(result.trx).to.be.a('string');
        expect(result.commit.accounts.rev).to.be.a('number');
        expect(result.results[0]).to.deep.include({ op: 'put', key: `k${String(i).padStart(2, '0')}` });
      });

      const transfer = {
        actions: [
          { collection: 'accounts', op: 'incr', key: 'alice', path: 'balance', by: -10, min: 0 },
          { collection: 'accounts', op: 'incr', key: 'k00', path: 'v', by: 10 },
          { collection: 'events', op: 'append', value: { from: 'alice', to: 'k00', amount: 10 } },
        ],
        expect: [{ collection: 'accounts', key: 'carol', exists: true }],
      };
      const overdraw = {
        actions: [{ collection: 'accounts', op: 'incr', key: 'alice', path: 'balance', by: -1000, min: 0 }],
      };
      const read = {
        actions: [
          { collection: 'accounts', op: 'get', key: 'alice' },
          { collection: 'events', op: 'read', from: 3 },
        ],
      };
      const input = [transfer, overdraw, '{not json', read]
        .map((l) => (typeof l === 'string' ? l : JSON.stringify(l)))
        .join('\n');
      // One at a time: the last line reads what the first one wrote. From a file, this time.
      const file = join(tmp, 'mixed.ndjson');
      writeFileSync(file, input);
      const mixed = await cli(['tx', '--file', file], { data });
      const [moved, refused, garbled, seen] = lines(mixed);
      expect(mixed.code, 'exit code of the first failure (EXPECT_FAILED), not BAD_INPUT').to.equal(8);
      expect(moved.ok).to.equal(true);
      expect(Object.keys(moved.commit)).to.have.members(['accounts', 'events']);
      expect(refused).to.deep.include({ ok: false });
      expect(refused.error.code).to.equal('EXPECT_FAILED');
      expect(refused.error.action).to.equal(0);
      expect(garbled.error.code).to.equal('BAD_INPUT');
      expect(seen.results[0]).to.deep.include({ op: 'get', found: true, value: { balance: 40 } });
      expect(seen.results[1].entries).to.deep.equal([
        { index: 3, value: { from: 'alice', to: 'k00', amount: 10 } },
      ]);
    });

    it('shows a block, its history and what is pending on it', async () => {
      const info = okJson(await cli(['collection', 'info', 'accounts', '--json'], { data }));
      const block = okJson(await cli(['block', 'get', info.root, '--json'], { data }));
      expect(block.id).to.equal(info.root);
      expect(block.rev).to.be.a('number').and.at.least(1);
      expect(block.block.header.collection).to.equal('accounts');

      const history = await cli(['block', 'history', info.root, '--json'], { data });
      expect(history.code).to.equal(0);
      const revisions = lines(history);
      expect(revisions.map((r) => r.rev)).to.deep.equal(revisions.map((_, i) => i + 1));
      expect(revisions.at(-1).rev).to.equal(block.rev);
      for (const revision of revisions) expect(revision).to.include.keys('lsn', 'trxId', 'transform');

      const first = okJson(await cli(['block', 'get', info.root, '--at', '1', '--json'], { data }));
      expect(first.rev).to.equal(1);
      const pending = okJson(await cli(['block', 'pending', info.root, '--json'], { data }));
      expect(pending).to.be.an('array');
    });

    it('returns commit certificates with tx --certificates, and block verify --certificates checks them offline', async () => {
      const input =
        '{"actions":[{"collection":"accounts","op":"incr","key":"alice","path":"balance","by":1},{"collection":"events","op":"append","value":"cert"}]}\n' +
        '{"actions":[{"collection":"accounts","op":"incr","key":"alice","path":"balance","by":-1}]}\n';
      const run = await cli(['tx', '--certificates'], { data, input });
      expect(run.code, run.stderr).to.equal(0);
      const results = lines(run);
      expect(Object.keys(results[0].commit).sort()).to.deep.equal(['accounts', 'events']);
      for (const result of results)
        for (const point of Object.values<{ rev: number; certificate: { lsn: number } }>(result.commit))
          expect(point.certificate.lsn).to.equal(point.rev);
      // Checked with no data directory at all: the certificates carry what they need.
      const nowhere = freshDir('no-such-dir');
      const verified = await cli(['block', 'verify', '--certificates', '-', '--json'], {
        data: nowhere,
        input: run.stdout,
      });
      expect(verified.code, verified.stderr).to.equal(0);
      const records = lines(verified);
      expect(records.map((r) => [r.line, r.collection, r.status])).to.deep.equal([
        [1, 'accounts', 'verified'],
        [1, 'events', 'verified'],
        [2, 'accounts', 'verified'],
      ]);
      expect(existsSync(nowhere)).to.equal(false);
      // An altered certificate fails with the integrity exit code; results without certificates are
      // unverifiable, not verified.
      const altered = run.stdout.replace(/"decision":"committed"/, '"decision":"aborted"');
      const bad = await cli(['block', 'verify', '--certificates', '-', '--json'], { data, input: altered });
      expect(bad.code).to.equal(7);
      expect(lines(bad).map((r) => r.status)).to.deep.equal(['invalid', 'verified', 'verified']);
      const plain = await cli(['tx'], {
        data,
        input: '{"actions":[{"collection":"events","op":"append","value":1}]}\n',
      });
      const bare = await cli(['block', 'verify', '--certificates', '-', '--json'], {
        data,
        input: plain.stdout,
      });
      expect(bare.code).to.equal(7);
      expect(lines(bare)[0]).to.include({ status: 'unverifiable' });
      const empty = await cli(['block', 'verify', '--certificates', '-', '--json'], { data, input: '\n' });
      expect(empty.code).to.equal(2);
      expect(JSON.parse(empty.stdout).error.code).to.equal('BAD_INPUT');
    });

    it('prints plain lines when piped without --json: tab-separated tables, NDJSON streams, compact values', async () => {
      const list = await cli(['collection', 'list'], { data });
      expect(list.code).to.equal(0);
      const rows = list.stdout
        .trimEnd()
        .split('\n')
        .map((line) => line.split('\t'));
      expect(rows.map((row) => row.slice(0, 2))).to.have.deep.members([
        ['accounts', 'tree'],
        ['events', 'diary'],
      ]);
      const scan = await cli(['collection', 'scan', 'accounts', '--limit', '1'], { data });
      expect(lines(scan)).to.deep.equal([{ key: 'alice', value: { balance: 40 } }]);
      const get = await cli(['collection', 'get', 'accounts', 'alice'], { data });
      expect(get.stdout).to.equal('{"balance":40}\n');
    });

    it('takes --data over OPTIMYSTIC_DATA, and --json from OPTIMYSTIC_JSON', async () => {
      const elsewhere = freshDir('elsewhere');
      const list = okJson(
        await cli(['collection', 'list', '--data', data], { data: elsewhere, env: { OPTIMYSTIC_JSON: '1' } }),
      );
      expect(list.map((c: { name: string }) => c.name)).to.have.members(['accounts', 'events']);
    });
  });

  describe('bad input writes nothing', () => {
    let data: string;
    let initial: unknown;

    before(async () => {
      data = freshDir('bad');
      okJson(await cli(['collection', 'create', 'accounts', '--type', 'tree', '--json'], { data }));
      okJson(await cli(['collection', 'create', 'events', '--type', 'diary', '--json'], { data }));
      const seed = [
        { actions: [{ collection: 'accounts', op: 'put', key: 'alice', value: { balance: 10 } }] },
        { actions: [{ collection: 'events', op: 'append', value: 'opened' }] },
      ];
      expect(
        (await cli(['tx'], { data, input: seed.map((l) => JSON.stringify(l)).join('\n') })).code,
      ).to.equal(0);
      initial = await snapshot(data);
    });

    afterEach(async () => {
      expect(await snapshot(data), 'collections, revisions and contents after the bad input').to.deep.equal(
        initial,
      );
    });

    it('gives every bad tx line its own error line, in input order, and exits with the first failure', async () => {
      const bad: [string | Buffer, string][] = [
        ['{"actions":[{"collection":"accounts","op":"put","key":"a","value":1}', 'BAD_INPUT'],
        ['{"actions":[{"collection":"accounts","op":"frobnicate","key":"a"}]}', 'BAD_INPUT'],
        ['{"actions":[{"collection":"nowhere","op":"put","key":"a","value":1}]}', 'NOT_FOUND'],
        ['{"actions":[{"collection":"events","op":"put","key":"a","value":1}]}', 'WRONG_TYPE'],
        ['{"actions":[{"collection":"accounts","op":"append","value":1}]}', 'WRONG_TYPE'],
        [`{"actions":[{"collection":"accounts","op":"put","key":"big","value":${bigString}}]}`, 'TOO_LARGE'],
        [`{"actions":[{"collection":"accounts","op":"put","key":"deep","value":${deepJson}}]}`, 'TOO_LARGE'],
        [Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x7b, 0x80, 0x1b, 0x5b]), 'BAD_INPUT'],
        // Good action first, bad one second: the whole line is refused, the good part included.
        [
          '{"actions":[{"collection":"accounts","op":"put","key":"bob","value":1},{"collection":"nowhere","op":"put","key":"a","value":1}]}',
          'NOT_FOUND',
        ],
      ];
      const input = Buffer.concat(bad.flatMap(([line]) => [Buffer.from(line), Buffer.from('\n')]));
      const run = await cli(['tx', '--concurrency', '4'], { data, input });
      expect(run.code, 'exit code of the first line (BAD_INPUT)').to.equal(2);
      const results = lines(run);
      expect(results.map((r) => r.ok)).to.deep.equal(bad.map(() => false));
      expect(results.map((r) => r.error.code)).to.deep.equal(bad.map(([, code]) => code));

      const notFoundFirst = await cli(['tx'], {
        data,
        input: `${bad[2]![0] as string}\n${bad[0]![0] as string}\n`,
      });
      expect(notFoundFirst.code, 'exit code of the first line (NOT_FOUND)').to.equal(4);
    });

    it('refuses empty input with a one-line BAD_INPUT error, exit 2', async () => {
      expectOneLineError(await cli(['tx'], { data, input: '' }), 2, 'empty stdin');
      expectJsonError(await cli(['tx', '--json'], { data, input: '' }), 'BAD_INPUT', 2, 'empty stdin --json');
      expectJsonError(
        await cli(['tx', '--file', join(tmp, 'missing.ndjson'), '--json'], { data }),
        'BAD_INPUT',
        2,
        'missing --file',
      );
    });

    it('refuses bad values, wrong kinds and unknown names given on the command line', async () => {
      const cases: [string[], string, number][] = [
        [['collection', 'put', 'accounts', 'k', '{bad'], 'BAD_INPUT', 2],
        [['collection', 'put', 'accounts', 'k', bigString], 'TOO_LARGE', 2],
        [['collection', 'put', 'accounts', 'k', deepJson], 'TOO_LARGE', 2],
        [['collection', 'put', 'events', 'k', '1'], 'WRONG_TYPE', 2],
        [['collection', 'put', 'nowhere', 'k', '1'], 'NOT_FOUND', 4],
        [['collection', 'append', 'accounts', '1'], 'WRONG_TYPE', 2],
        [['collection', 'append', 'events', 'not json'], 'BAD_INPUT', 2],
        [['collection', 'del', 'events', 'k'], 'WRONG_TYPE', 2],
        [['collection', 'create', 'accounts', '--type', 'diary'], 'EXISTS', 2],
        [['collection', 'scan', 'events'], 'WRONG_TYPE', 2],
        [['collection', 'read', 'accounts'], 'WRONG_TYPE', 2],
        [['collection', 'get', 'accounts', 'nobody'], 'NOT_FOUND', 4],
        [['collection', 'info', 'nowhere'], 'NOT_FOUND', 4],
        [['block', 'get', 'not-a-block-id'], 'BAD_INPUT', 2],
        [['block', 'get', unknownBlockId], 'NOT_FOUND', 4],
        [['block', 'history', unknownBlockId], 'NOT_FOUND', 4],
      ];
      for (const [args, code, exit] of cases) {
        expectJsonError(await cli([...args, '--json'], { data }), code, exit, args.join(' ').slice(0, 60));
      }
      expectOneLineError(
        await cli(['collection', 'put', 'accounts', 'k', '{bad'], { data }),
        2,
        'put invalid JSON, no --json',
      );
      const verbose = await cli(['collection', 'get', 'accounts', 'nobody', '--verbose'], { data });
      expect(verbose.code).to.equal(4);
      expect(
        verbose.stderr.trimEnd().split('\n').length,
        'a stack trace follows with --verbose',
      ).to.be.greaterThan(1);
    });

    it('refuses to wait for transactions typed at a terminal when there is no --file', function () {
      // `script` gives the CLI a pseudo-terminal as stdin; without it (not util-linux), skip.
      const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(cliRoot, 'bin', 'run.js'))} tx --json`;
      const run = spawnSync('script', ['-qec', command, '/dev/null'], {
        encoding: 'utf8',
        env: cleanEnv({ OPTIMYSTIC_DATA: data }),
        input: '',
        timeout: 20_000,
      });
      if (run.error !== undefined) this.skip();
      expect(run.status).to.equal(2);
      const error = JSON.parse(run.stdout.trim()) as { error: { code: string } };
      expect(error.error.code).to.equal('BAD_INPUT');
    });

    it('refuses command-line usage mistakes with exit 2 before opening anything', async () => {
      const cases: string[][] = [
        ['collection', 'get', 'accounts'],
        ['collection', 'list', '--no-such-flag'],
        ['collection', 'create', 'x', '--type', 'table'],
        ['collection', 'create', 'x'],
        ['collection', 'scan', 'accounts', '--limit', 'abc'],
        ['collection', 'scan', 'accounts', '--limit', '0'],
        ['collection', 'read', 'events', '--follow', '--reverse'],
        ['collection', 'info', 'accounts', 'extra-argument'],
        ['collection', 'list', '--offline', '--connect', '/ip4/127.0.0.1/tcp/1'],
        ['tx', '--concurrency', '0'],
      ];
      const runs = await Promise.all(cases.map((args) => cli([...args, '--json'], { data })));
      runs.forEach((run, i) => expectJsonError(run, 'BAD_INPUT', 2, cases[i]!.join(' ')));
      expectOneLineError(
        await cli(['collection', 'get', 'accounts'], { data }),
        2,
        'missing argument, no --json',
      );
      // Piped input is never taken for a missing argument (oclif would read it as one).
      const piped = await cli(['collection', 'get', '--json'], { data, input: 'accounts\n' });
      expectJsonError(piped, 'BAD_INPUT', 2, 'missing NAME KEY with stdin piped');
      expect(piped.stdout).to.include('missing arguments NAME KEY');
      const named = await cli(['collection', 'info', '--json'], { data, input: 'accounts\n' });
      expectJsonError(named, 'BAD_INPUT', 2, 'missing NAME with stdin piped');
    });

    it('treats an unknown command, or an extra word after one that takes no arguments, as a usage error', async () => {
      const cases = [['collection', 'frobnicate'], ['collection', 'list', 'extra-word'], ['frobnicate']];
      const runs = await Promise.all(cases.map((args) => cli([...args, '--json'], { data })));
      runs.forEach((run, i) => expectJsonError(run, 'BAD_INPUT', 2, cases[i]!.join(' ')));
      expectOneLineError(await cli(['collection', 'frobnicate'], { data }), 2, 'unknown command, no --json');
    });

    it('reports an unreachable --connect address (flag or OPTIMYSTIC_CONNECT) as unavailable, exit 6', async () => {
      // The light-client key exists already (its first use adds a note naming its peer id).
      expect((await cli(['keygen', 'identity', '--client'], { data })).code).to.equal(0);
      const [flag, env, plain] = await Promise.all([
        cli(['collection', 'list', '--connect', '/ip4/127.0.0.1/tcp/1', '--json'], { data }),
        cli(['collection', 'put', 'accounts', 'k', '1', '--json'], {
          data,
          env: { OPTIMYSTIC_CONNECT: '/ip4/127.0.0.1/tcp/1' },
        }),
        cli(['collection', 'list', '--connect', '/ip4/127.0.0.1/tcp/1'], { data }),
      ]);
      expectJsonError(flag, 'UNAVAILABLE', 6, '--connect');
      expectJsonError(env, 'UNAVAILABLE', 6, 'OPTIMYSTIC_CONNECT');
      expectOneLineError(plain, 6, '--connect, no --json');
    });
  });

  describe('a data directory that holds no database', () => {
    it('is left as it was by every command but collection create, which starts the database', async () => {
      const data = join(freshDir('nothing-here'), 'typo');
      const note = /^note: there is no database in .*typo yet; nothing was created there/;
      const list = await cli(['collection', 'list', '--json'], { data });
      expect(okJson(list)).to.deep.equal([]);
      expect(list.stderr).to.match(note);
      const reads: [readonly string[], string][] = [
        [['collection', 'get', 'accounts', 'alice', '--json'], 'get'],
        [['collection', 'scan', 'accounts', '--json'], 'scan'],
        [['collection', 'info', 'accounts', '--json'], 'info'],
        [['collection', 'read', 'events', '--json'], 'read'],
        [['collection', 'put', 'accounts', 'alice', '{"balance":1}', '--json'], 'put'],
        [['collection', 'append', 'events', '"x"', '--json'], 'append'],
        [['block', 'get', unknownBlockId, '--json'], 'block get'],
      ];
      for (const [args, what] of reads) {
        const run = await cli(args, { data });
        expectJsonError(run, 'NOT_FOUND', 4, what);
        expect(run.stderr, what).to.match(note);
      }
      const tx = await cli(['tx'], {
        data,
        input: JSON.stringify({ actions: [{ collection: 'accounts', op: 'put', key: 'a', value: 1 }] }),
      });
      expect(tx.code).to.equal(4);
      expect(lines(tx)[0].error.code).to.equal('NOT_FOUND');
      expect(existsSync(data), 'the directory after commands that only use a database').to.equal(false);

      const created = await cli(['collection', 'create', 'accounts', '--type', 'tree', '--json'], { data });
      expect(okJson(created).name).to.equal('accounts');
      expect(created.stderr).to.equal('');
      expect(existsSync(join(data, 'store'))).to.equal(true);
      const again = await cli(['collection', 'list', '--json'], { data });
      expect(okJson(again).map((c: { name: string }) => c.name)).to.deep.equal(['accounts']);
      expect(again.stderr).to.equal('');
    });
  });

  describe('a data directory path that names a file', () => {
    it('is refused before anything runs: BAD_INPUT for --data, CONFIG_INVALID for OPTIMYSTIC_DATA', async () => {
      const file = join(freshDir('a-file'));
      writeFileSync(file, 'not a directory\n');
      const commands: readonly string[][] = [
        ['collection', 'list', '--json'],
        ['collection', 'create', 'accounts', '--type', 'tree', '--json'],
        ['node', 'status', '--json'],
        ['keygen', 'list', '--json'],
      ];
      for (const args of commands) {
        expectJsonError(await cli([...args, '--data', file], { data: '' }), 'BAD_INPUT', 2, args.join(' '));
        expectJsonError(await cli(args, { data: file }), 'CONFIG_INVALID', 3, `${args.join(' ')} (variable)`);
      }
      expect(readFileSync(file, 'utf8')).to.equal('not a directory\n');
    });
  });

  describe('a data directory in use by another process', () => {
    it('is refused with DATA_DIR_BUSY, exit 6, and a one-line message', async () => {
      const data = freshDir('busy');
      const db = await openDatabase({ dataDir: data });
      try {
        await db.createCollection('held', 'tree');
        const [plain, json] = [
          await cli(['collection', 'list'], { data }),
          await cli(['collection', 'list', '--json'], { data }),
        ];
        expectOneLineError(plain, 6, 'busy data dir');
        expectJsonError(json, 'DATA_DIR_BUSY', 6, 'busy data dir --json');
      } finally {
        await db.close();
      }
      const list = okJson(await cli(['collection', 'list', '--json'], { data }));
      expect(list.map((c: { name: string }) => c.name)).to.deep.equal(['held']);
    });
  });

  describe('Ctrl-C', () => {
    it('stops a scan with INTERRUPTED, exit 130, and leaves the data directory closed cleanly', async () => {
      const data = freshDir('interrupt');
      okJson(await cli(['collection', 'create', 'big', '--type', 'tree', '--json'], { data }));
      // ~300 KiB of output: more than a pipe holds, so the scan blocks while we do not read.
      const actions = Array.from({ length: 1000 }, (_, i) => ({
        collection: 'big',
        op: 'put',
        key: `k${String(i).padStart(4, '0')}`,
        value: 'x'.repeat(300),
      }));
      expect((await cli(['tx'], { data, input: JSON.stringify({ actions }) })).code).to.equal(0);

      const scan = startCli(['collection', 'scan', 'big', '--json'], { data });
      scan.stdout.pause();
      let stdout = '';
      const exited = new Promise<number | null>((resolve) => scan.on('close', (code) => resolve(code)));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      scan.kill('SIGINT');
      scan.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      scan.stdout.resume();
      expect(await exited).to.equal(130);
      const printed = lines({ code: 130, stdout, stderr: '' });
      expect(printed.length).to.be.within(2, 1000);
      expect(printed.at(-1).error.code).to.equal('INTERRUPTED');
      printed
        .slice(0, -1)
        .forEach((entry, i) => expect(entry.key).to.equal(`k${String(i).padStart(4, '0')}`));

      const after = okJson(await cli(['collection', 'info', 'big', '--json'], { data }));
      expect(after.name).to.equal('big');
    });
  });

  describe('collection read --follow', () => {
    it('prints new entries as they are appended and exits 0 on Ctrl-C after a clean close', async () => {
      const data = freshDir('follow');
      okJson(await cli(['collection', 'create', 'log', '--type', 'diary', '--json'], { data }));
      okJson(await cli(['collection', 'append', 'log', '"first"', '--json'], { data }));

      const follower = startCli(['collection', 'read', 'log', '--follow', '--json'], { data });
      let stdout = '';
      let stderr = '';
      follower.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      follower.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const exited = new Promise<number | null>((resolve) => follower.on('close', (code) => resolve(code)));
      const waitForLines = async (count: number): Promise<void> => {
        const deadline = Date.now() + 15_000;
        while (stdout.split('\n').filter((l) => l !== '').length < count) {
          if (Date.now() > deadline)
            throw new Error(`follower printed ${JSON.stringify(stdout)}; stderr ${stderr}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      try {
        await waitForLines(1);
        // The follower opens the directory only while it checks; an append that lands during a check
        // is refused as busy and simply retried.
        let appended: Run | undefined;
        for (let attempt = 0; attempt < 20; attempt++) {
          appended = await cli(['collection', 'append', 'log', '"second"', '--json'], { data });
          if (appended.code !== 6) break;
        }
        expect(appended?.code, appended?.stdout).to.equal(0);
        await waitForLines(2);
      } finally {
        follower.kill('SIGINT');
      }
      expect(await exited).to.equal(0);
      expect(stderr).to.equal('');
      expect(lines({ code: 0, stdout, stderr })).to.deep.equal([
        { index: 0, value: 'first' },
        { index: 1, value: 'second' },
      ]);
    });
  });

  describe('--offline on the directory of a stopped network node', () => {
    it('follows its diary read-only (one note), and stops with DATA_DIR_BUSY once a node holds the directory', async () => {
      const data = freshDir('offline-follow');
      okJson(await cli(['collection', 'create', 'log', '--type', 'diary', '--json'], { data }));
      okJson(await cli(['collection', 'append', 'log', '"first"', '--json'], { data }));
      // The directory of a node that met another: embedded commands would fork it, --offline reads.
      const member = new LevelRawStore(join(data, 'store'));
      await member.open();
      await member.batch([{ type: 'put', key: `${memberPrefix}12D3KooWSomePeer`, value: '1' }]);
      await member.sync();
      await member.close();
      expectJsonError(
        await cli(['collection', 'read', 'log', '--json'], { data }),
        'UNAVAILABLE',
        6,
        'read without --offline',
      );

      const follower = startCli(['collection', 'read', 'log', '--follow', '--offline', '--json'], { data });
      let stdout = '';
      let stderr = '';
      follower.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      follower.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const exited = new Promise<number | null>((resolve) => follower.on('close', (code) => resolve(code)));
      let held: LevelRawStore | undefined;
      try {
        const deadline = Date.now() + 15_000;
        while (!stdout.includes('first')) {
          if (Date.now() > deadline) throw new Error(`follower printed ${stdout}; stderr ${stderr}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        // A few checks later (each opens the directory again), a "node" takes it: this process, with
        // the lock file naming it and the store open.
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        writeFileSync(join(data, 'repo.lock'), JSON.stringify({ pid: process.pid, startedAt: Date.now() }));
        for (let attempt = 0; held === undefined; attempt++) {
          const store = new LevelRawStore(join(data, 'store'));
          try {
            await store.open();
            held = store;
          } catch (error) {
            if (attempt > 100) throw error;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
        const code = await Promise.race([
          exited,
          new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 10_000)),
        ]);
        expect(code, stderr).to.equal(6);
      } finally {
        follower.kill('SIGINT');
        await held?.close();
        rmSync(join(data, 'repo.lock'), { force: true });
      }
      const printed = lines({ code: 0, stdout, stderr });
      expect(printed[0]).to.deep.equal({ index: 0, value: 'first' });
      expect(printed[1].error.code).to.equal('DATA_DIR_BUSY');
      expect(printed).to.have.length(2);
      expect(stderr.match(/note: /g), stderr).to.have.length(1);
      expect(stderr).to.contain('read-only');
    });
  });

  describe('tx progress', () => {
    it('shows progress and a summary on a terminal stderr while the results go to a file, nothing when piped', async function () {
      // `script` (util-linux) gives the command a terminal; stdout is redirected to a file inside it.
      if (spawnSync('script', ['--version']).status !== 0) this.skip();
      const data = freshDir('progress');
      expect((await cli(['collection', 'create', 'users', '--type', 'tree'], { data })).code).to.equal(0);
      const input = join(tmp, 'progress-input.ndjson');
      const puts = Array.from({ length: 300 }, (_, i) =>
        JSON.stringify({ actions: [{ collection: 'users', op: 'put', key: `u${i}`, value: { i } }] }),
      );
      writeFileSync(input, `${puts.join('\n')}\n${puts[0]!.replace('users', 'nosuch')}\n`);
      const results = join(tmp, 'progress-results.ndjson');
      const command = `'${process.execPath}' '${join(cliRoot, 'bin', 'run.js')}' tx --file '${input}' > '${results}'`;
      const onTerminal = spawnSync('script', ['-qec', command, '/dev/null'], {
        cwd: cliRoot,
        env: cleanEnv({ OPTIMYSTIC_DATA: data }),
        encoding: 'utf8',
      });
      // The exit code of the failed last line (NOT_FOUND), and a summary that counts it.
      expect(onTerminal.status, onTerminal.stdout).to.equal(4);
      expect(onTerminal.stdout).to.match(/tx: 301 transactions in [\d.]+ s \([\d,]+\/s\): 300 ok, 1 failed/);
      const written = readFileSync(results, 'utf8').trim().split('\n');
      expect(written).to.have.length(301);
      expect(written.every((line) => !line.includes('tx: '))).to.equal(true);

      const piped = await cli(['tx', '--file', input], { data });
      expect(piped.code).to.equal(4);
      expect(piped.stderr).to.equal('');
    });
  });
});
