import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Every command imports the engine's index, and most of them only talk to a running node over its
 * control socket or open the store: loading libp2p (about 700 modules) for them made each command
 * take 0.65–0.8 s instead of 0.35–0.4 s. libp2p is loaded on demand (`--connect`, `node start`), so
 * the static imports reachable from the CLI's shared modules must not lead to it.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const libp2pModules = /^(libp2p$|@libp2p\/|@chainsafe\/)/;
/** What only full nodes run: a light client (`--connect`) has no DHT and no relay. */
const fullNodeModules = /^@libp2p\/(kad-dht|circuit-relay-v2)$/;

/** Static value imports of a TypeScript file (type-only imports are erased). */
function valueImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of source.matchAll(/^\s*(import|export)\s+([^;]*?)\s+from\s+['"]([^'"]+)['"]/gm)) {
    const clause = match[2]!;
    if (clause.startsWith('type ')) continue;
    const braces = /^\{([^}]*)\}$/.exec(clause.trim());
    if (braces !== undefined && braces !== null) {
      const names = braces[1]!
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '');
      if (names.length > 0 && names.every((name) => name.startsWith('type '))) continue;
    }
    found.push(match[3]!);
  }
  for (const match of source.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) found.push(match[1]!);
  return found;
}

/** Packages matching `heavy` that `start` reaches through static imports, each with the path to it. */
function heavyReached(start: string, heavy = libp2pModules): string[] {
  const from = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  const reached: string[] = [];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const spec of valueImports(file)) {
      if (!spec.startsWith('.')) {
        if (heavy.test(spec)) {
          const chain = [spec];
          for (let at: string | undefined = file; at !== undefined; at = from.get(at))
            chain.push(relative(root, at));
          reached.push(chain.join(' <- '));
        }
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      const path = existsSync(target) ? target : target.replace(/\.ts$/, '.tsx');
      if (!existsSync(path) || from.has(path)) continue;
      from.set(path, file);
      queue.push(path);
    }
  }
  return reached;
}

describe('what a command loads', () => {
  it('the engine index and the CLI base reach no libp2p module through static imports', () => {
    for (const start of ['src/engine/index.ts', 'src/ui/cli/index.ts', 'src/commands/collection/list.ts'])
      expect(heavyReached(join(root, start)), start).to.deep.equal([]);
  });

  it('a light client reaches no DHT or relay module through static imports', () => {
    expect(heavyReached(join(root, 'src/engine/node/light-client.ts'), fullNodeModules)).to.deep.equal([]);
  });

  it('the check finds libp2p where it is imported (the network module itself)', () => {
    expect(heavyReached(join(root, 'src/engine/network/index.ts'))).to.not.deep.equal([]);
  });
});
