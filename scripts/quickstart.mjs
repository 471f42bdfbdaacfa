#!/usr/bin/env node
// `npm start`: runs the real CLI against the embedded default data directory and shows it working.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));

function run(args, input) {
  process.stdout.write(`\n$ optimystic ${args.join(' ')}${input ? ' <<EOF\n' + input + 'EOF' : ''}\n`);
  const result = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8', stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  return result.status;
}

const exists = spawnSync(process.execPath, [bin, 'collection', 'info', 'accounts'], { stdio: 'ignore' }).status;
if (exists !== 0) {
  run(['collection', 'create', 'accounts', '--type', 'tree']);
  run(['collection', 'create', 'transfers', '--type', 'diary']);
  run(['collection', 'put', 'accounts', 'alice', '{"balance":100}']);
  run(['collection', 'put', 'accounts', 'bob', '{"balance":20}']);
}
run(
  ['tx'],
  [
    '{"actions":[{"collection":"accounts","op":"incr","key":"alice","path":"balance","by":-10,"min":0},{"collection":"accounts","op":"incr","key":"bob","path":"balance","by":10},{"collection":"transfers","op":"append","value":{"from":"alice","to":"bob","amount":10}}]}',
    '{"actions":[{"collection":"accounts","op":"incr","key":"bob","path":"balance","by":-1000,"min":0}]}',
    '',
  ].join('\n'),
);
run(['collection', 'scan', 'accounts']);
run(['collection', 'read', 'transfers', '--reverse', '--limit', '3']);
process.stdout.write('\nData lives in ~/.optimystic (change with --data or OPTIMYSTIC_DATA). See docs/cli.md for every command.\n');
