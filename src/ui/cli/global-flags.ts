import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Flags } from '@oclif/core';

/**
 * Flags every data command accepts. Each one also reads an OPTIMYSTIC_* environment variable; a flag
 * on the command line wins over the variable. `json` replaces the flag oclif adds for
 * `enableJsonFlag` (same name, our description and env var); oclif decides JSON mode from the raw
 * argv, so DataCommand.jsonEnabled also checks OPTIMYSTIC_JSON.
 */
export const globalFlags = {
  data: Flags.string({
    description: 'data directory (of the node running on it, or opened embedded) [default: ~/.optimystic]',
    env: 'OPTIMYSTIC_DATA',
    helpGroup: 'GLOBAL',
    helpValue: 'DIR',
  }),
  offline: Flags.boolean({
    description:
      "never use the network or a running node: open the data directory embedded (a stopped network node's directory read-only: its own copies)",
    env: 'OPTIMYSTIC_OFFLINE',
    helpGroup: 'GLOBAL',
    exclusive: ['connect'],
  }),
  connect: Flags.string({
    description:
      'work as a libp2p light client of the remote node at MULTIADDR (network name from OPTIMYSTIC_NETWORK or the config file)',
    env: 'OPTIMYSTIC_CONNECT',
    helpGroup: 'GLOBAL',
    helpValue: 'MULTIADDR',
  }),
  json: Flags.boolean({
    description:
      'machine-readable output: one JSON value, or NDJSON for streams; errors as {"error":{"code","message"}} on stdout',
    env: 'OPTIMYSTIC_JSON',
    helpGroup: 'GLOBAL',
  }),
  verbose: Flags.boolean({
    description: 'show stack traces with errors',
    env: 'OPTIMYSTIC_VERBOSE',
    helpGroup: 'GLOBAL',
  }),
};

/** Environment variable that turns on --json. */
export const jsonEnvVar = 'OPTIMYSTIC_JSON';

/** Values oclif treats as "on" for boolean environment variables; we use the same ones. */
export function envTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'y', 'yes'].includes(value.toLowerCase());
}

export const defaultDataDir = '~/.optimystic';

/** Resolves --data to an absolute path, expanding a leading `~` (an env var is not expanded by a shell). */
export function resolveDataDir(flag: string | undefined, home: string = homedir()): string {
  const dir = flag === undefined || flag === '' ? defaultDataDir : flag;
  if (dir === '~') return home;
  if (dir.startsWith('~/')) return join(home, dir.slice(2));
  return isAbsolute(dir) ? dir : resolve(dir);
}
