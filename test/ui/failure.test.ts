import { expect } from 'chai';
import { EngineError } from '../../src/engine/index.js';
import { describeFailure, failureJson, oneLine, usageError } from '../../src/ui/cli/failure.js';

describe('failure rendering', () => {
  it('collapses a multi-line, coloured message to one line', () => {
    expect(oneLine('\u001b[2mfirst\u001b[22m\n\n  second  part\nSee more help with --help')).to.equal(
      'first; second part',
    );
    expect(oneLine('Missing 1 required arg:\nname  collection name')).to.equal(
      'Missing 1 required arg: name collection name',
    );
    expect(oneLine('')).to.equal('unknown error');
  });

  it("keeps an EngineError's code and maps it to its exit code", () => {
    const failure = describeFailure(new EngineError('NOT_FOUND', 'no collection named x'));
    expect(failure).to.include({ code: 'NOT_FOUND', exit: 4, message: 'no collection named x' });
    expect(failureJson(failure)).to.deep.equal({
      error: { code: 'NOT_FOUND', message: 'no collection named x' },
    });
  });

  it('asks for a bug report on INTERNAL errors, keeping the message on one line', () => {
    const failure = describeFailure(new EngineError('INTERNAL', 'invariant broke:\nleaf out of order'));
    expect(failure.exit).to.equal(1);
    expect(failure.message).to.match(/^invariant broke: leaf out of order; .*--verbose/);
    expect(failure.message).to.not.include('\n');
  });

  it('reports anything that is not an EngineError as INTERNAL, exit 1, with its stack kept for --verbose', () => {
    const failure = describeFailure(new TypeError('x is undefined'));
    expect(failure).to.include({ code: 'INTERNAL', exit: 1 });
    expect(failure.stack).to.include('TypeError');
    expect(describeFailure('a thrown string').code).to.equal('INTERNAL');
  });

  it('turns oclif parse errors into one-line BAD_INPUT usage errors', () => {
    const flag = usageError(
      new Error('Parsing --limit \n\tExpected an integer but received: abc\nSee more help with --help'),
      'optimystic collection scan',
    );
    expect(flag.code).to.equal('BAD_INPUT');
    expect(flag.message).to.equal(
      '--limit: Expected an integer but received: abc (see: optimystic collection scan --help)',
    );

    const missing = Object.assign(
      new Error('Missing 2 required args:\nname  collection\nkey  key\nSee more help with --help'),
      {
        args: [{ name: 'name' }, { name: 'key' }],
      },
    );
    expect(usageError(missing, 'optimystic collection get').message).to.equal(
      'missing arguments NAME KEY (see: optimystic collection get --help)',
    );

    // An id that starts with '-' reads as an unknown flag; the message says how to pass it.
    const idLike = usageError(
      new Error('Nonexistent flag: -adSw8J2BCH2hjwYD9Q2ug\nSee more help with --help'),
      'optimystic keygen show',
    );
    expect(idLike.message).to.equal(
      "Nonexistent flag: -adSw8J2BCH2hjwYD9Q2ug; to pass an argument that starts with '-', end the flags with --, as in: optimystic keygen show [FLAGS] -- -ID (see: optimystic keygen show --help)",
    );
    expect(usageError(new Error('Nonexistent flag: -x'), 'optimystic collection list').message).to.equal(
      'Nonexistent flag: -x (see: optimystic collection list --help)',
    );

    const kept = new EngineError('TOO_LARGE', 'too big');
    expect(usageError(kept, 'x')).to.equal(kept);
  });
});
