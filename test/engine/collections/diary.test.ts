import { expect } from 'chai';
import { isEngineError, type ErrorCode } from '../../../src/engine/base/errors.js';
import type { BlockId } from '../../../src/engine/base/ids.js';
import { limits } from '../../../src/engine/base/limits.js';
import { Diary, type DiaryEntry, type DiaryReadRange } from '../../../src/engine/collections/diary.js';
import { MemoryBlockAccess } from '../../helpers/memory-block-access.js';

const collection = 'events';

function newDiary(): { access: MemoryBlockAccess; diary: Diary; rootId: BlockId } {
  const access = new MemoryBlockAccess();
  const rootId = Diary.create(access, collection);
  return {
    access,
    rootId,
    diary: new Diary(access, rootId, collection, { leafEntriesMax: 4, branchChildrenMax: 4 }),
  };
}

async function filled(count: number): Promise<{ access: MemoryBlockAccess; diary: Diary; rootId: BlockId }> {
  const built = newDiary();
  for (let i = 0; i < count; i++) await built.diary.append({ n: i });
  built.access.resetTracking();
  return built;
}

async function readAll(diary: Diary, range: DiaryReadRange = {}): Promise<DiaryEntry[]> {
  const out: DiaryEntry[] = [];
  for await (const entry of diary.read(range)) out.push(entry);
  return out;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(isEngineError(error, code), `expected ${code}, got ${String(error)}`).to.equal(true);
    return;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}

describe('Diary', () => {
  it('is empty when created', async () => {
    const { diary } = newDiary();
    expect(await diary.count()).to.equal(0);
    expect(await diary.get(0)).to.equal(undefined);
    expect(await readAll(diary)).to.deep.equal([]);
    expect(await readAll(diary, { reverse: true })).to.deep.equal([]);
  });

  it('gives appends consecutive indexes from 0 and reads each back', async () => {
    const { diary } = newDiary();
    expect(await diary.append('a')).to.equal(0);
    expect(await diary.append({ b: 1 })).to.equal(1);
    expect(await diary.append(null)).to.equal(2);
    expect(await diary.count()).to.equal(3);
    expect(await diary.get(1)).to.deep.equal({ b: 1 });
    expect(await diary.get(2)).to.equal(null);
    expect(await diary.get(3)).to.equal(undefined);
  });

  it('keeps counting correctly across many leaf and branch splits', async () => {
    const { diary } = await filled(300);
    expect(await diary.count()).to.equal(300);
    expect(await diary.append('next')).to.equal(300);
    const all = await readAll(diary);
    expect(all.map((entry) => entry.index)).to.deep.equal([...Array(301).keys()]);
    expect(all[17]).to.deep.equal({ index: 17, value: { n: 17 } });
  });

  it('reads forward from an index with a limit', async () => {
    const { diary } = await filled(50);
    expect(await readAll(diary, { from: 20, limit: 3 })).to.deep.equal([
      { index: 20, value: { n: 20 } },
      { index: 21, value: { n: 21 } },
      { index: 22, value: { n: 22 } },
    ]);
    expect(await readAll(diary, { from: 48 })).to.have.length(2);
    expect(await readAll(diary, { from: 50 })).to.deep.equal([]);
  });

  it('reads in reverse from the last entry by default, or downward from an index', async () => {
    const { diary } = await filled(50);
    expect((await readAll(diary, { reverse: true, limit: 2 })).map((entry) => entry.index)).to.deep.equal([
      49, 48,
    ]);
    expect((await readAll(diary, { reverse: true, from: 2 })).map((entry) => entry.index)).to.deep.equal([
      2, 1, 0,
    ]);
    expect(
      (await readAll(diary, { reverse: true, from: 500, limit: 1 })).map((entry) => entry.index),
    ).to.deep.equal([49]);
  });

  it('reads lazily: a read with limit 2 touches only the first leaves, not the whole diary', async () => {
    const { access, diary } = await filled(400);
    await readAll(diary, { limit: 2 });
    expect(access.reads.size).to.be.below(10);
  });

  it('an append reads the rightmost path and writes only the last leaf when it has room', async () => {
    const { access, diary } = await filled(41);
    await diary.append('x');
    expect(access.writes.size).to.equal(1);
    expect(access.reads.size).to.be.below(8);
  });

  it('rejects a value over valueBytesMax with TOO_LARGE and takes no index', async () => {
    const { access, diary } = await filled(3);
    await expectCode(diary.append('x'.repeat(limits.valueBytesMax)), 'TOO_LARGE');
    expect(access.writes.size).to.equal(0);
    expect(await diary.append('ok')).to.equal(3);
  });

  it('rejects a negative or fractional index with BAD_INPUT', async () => {
    const { diary } = await filled(3);
    await expectCode(diary.get(-1), 'BAD_INPUT');
    await expectCode(diary.get(1.5), 'BAD_INPUT');
    await expectCode(readAll(diary, { from: -2 }), 'BAD_INPUT');
    await expectCode(readAll(diary, { limit: -2 }), 'BAD_INPUT');
  });

  it('a second Diary over the same root sees the same entries', async () => {
    const { access, diary, rootId } = newDiary();
    await diary.append(1);
    const again = new Diary(access, rootId, collection);
    expect(await again.append(2)).to.equal(1);
    expect(await diary.count()).to.equal(2);
  });
});
