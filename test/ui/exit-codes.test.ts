import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { errorCodes } from '../../src/engine/index.js';
import { exitClasses, exitCodeByError, exitCodeFor } from '../../src/ui/cli/exit-codes.js';

const errorsDoc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** Rows of the markdown table that follows `heading`, as trimmed cells. */
function tableAfter(heading: string): string[][] {
  const start = errorsDoc.indexOf(`\n${heading}\n`);
  expect(start, `docs/errors.md has a "${heading}" section`).to.be.greaterThan(-1);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of errorsDoc.slice(start + heading.length + 2).split('\n')) {
    if (line.startsWith('|')) {
      inTable = true;
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      if (cells.every((cell) => /^-+$/.test(cell))) continue;
      rows.push(cells);
    } else if (inTable) break;
  }
  return rows.slice(1); // drop the header row
}

describe('exit codes', () => {
  it('maps every error code to an exit code', () => {
    for (const code of errorCodes) {
      expect(exitCodeByError, code).to.have.property(code);
      expect(Object.values(exitClasses)).to.include(exitCodeFor(code));
    }
    expect(Object.keys(exitCodeByError)).to.have.members([...errorCodes]);
  });

  it('follows SPEC §2.3: usage errors exit 2, conflicts 5, unavailability 6, integrity 7, guards 8', () => {
    expect(
      ['BAD_INPUT', 'TOO_LARGE', 'WRONG_TYPE', 'EXISTS'].map((c) => exitCodeFor(c as never)),
    ).to.deep.equal([2, 2, 2, 2]);
    expect(exitCodeFor('INTERNAL')).to.equal(1);
    expect(exitCodeFor('CONFIG_INVALID')).to.equal(3);
    expect(exitCodeFor('NOT_FOUND')).to.equal(4);
    expect(exitCodeFor('CONFLICT')).to.equal(5);
    expect(
      ['UNAVAILABLE', 'TIMEOUT', 'NO_QUORUM', 'DATA_DIR_BUSY'].map((c) => exitCodeFor(c as never)),
    ).to.deep.equal([6, 6, 6, 6]);
    expect(['BAD_SIGNATURE', 'BAD_CERTIFICATE', 'CORRUPT'].map((c) => exitCodeFor(c as never))).to.deep.equal(
      [7, 7, 7],
    );
    expect(exitCodeFor('EXPECT_FAILED')).to.equal(8);
    expect(exitCodeFor('INTERRUPTED')).to.equal(130);
  });

  it('matches the error-code table in docs/errors.md, row for row', () => {
    const rows = tableAfter('## Error codes');
    const documented = new Map(rows.map((cells) => [cells[0]!.replace(/`/g, ''), Number(cells[1])]));
    expect([...documented.keys()]).to.have.members([...errorCodes]);
    for (const [code, exit] of documented) {
      expect(exit, `exit code of ${code} in docs/errors.md`).to.equal(exitCodeFor(code as never));
    }
    for (const cells of rows) {
      expect(cells[2], `meaning of ${cells[0]}`).to.not.equal('');
      expect(cells[3], `what to do about ${cells[0]}`).to.not.equal('');
    }
  });

  it('matches the exit-code table in docs/errors.md', () => {
    const documented = tableAfter('## Exit codes').map((cells) => Number(cells[0]));
    expect(documented).to.have.members(Object.values(exitClasses));
  });
});
