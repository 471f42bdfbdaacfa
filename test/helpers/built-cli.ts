import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository the tests run from, and the build whose binary the end-to-end tests spawn. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** OPTIMYSTIC_CLI_ROOT points the end-to-end tests at another build of the same sources. */
export const cliRoot = process.env['OPTIMYSTIC_CLI_ROOT'] ?? repoRoot;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/ (npm run build) unless it is newer than every source file. */
export function buildIfStale(): void {
  if (cliRoot !== repoRoot) return;
  const manifest = join(repoRoot, 'oclif.manifest.json');
  const built = existsSync(join(repoRoot, 'dist', 'commands')) && existsSync(manifest);
  if (built && statSync(manifest).mtimeMs >= newestMtime(join(repoRoot, 'src'))) return;
  const result = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}\n${result.stderr}`);
}
