/**
 * Finds and reads a node's config file with cosmiconfig. Which file applies, first found wins:
 *   1. an explicit path (`--config FILE` / OPTIMYSTIC_CONFIG);
 *   2. the data directory's `config.json` (the most specific: it belongs to this node);
 *   3. in the working directory: `optimystic.config.{json,yaml,yml,js,mjs,cjs}` or `.optimysticrc`
 *      (JSON or YAML; also `.optimysticrc.{json,yaml,yml}`).
 * The file's contents are validated by schema.ts; a file that does not parse is CONFIG_INVALID.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EngineError } from '../base/errors.js';
import { configBounds, validateConfigFile, type NodeSettings } from './schema.js';

export const dataDirConfigName = 'config.json';

/** Config file names looked for in the working directory, in order. */
export const configSearchPlaces = [
  'optimystic.config.json',
  'optimystic.config.yaml',
  'optimystic.config.yml',
  'optimystic.config.js',
  'optimystic.config.mjs',
  'optimystic.config.cjs',
  '.optimysticrc',
  '.optimysticrc.json',
  '.optimysticrc.yaml',
  '.optimysticrc.yml',
] as const;

export interface LoadConfigOptions {
  readonly dataDir: string;
  /** Directory searched for optimystic.config.* / .optimysticrc (default: the working directory). */
  readonly cwd?: string;
  /** An explicit file; it must exist. */
  readonly path?: string;
}

export interface LoadedConfig {
  readonly path: string;
  readonly settings: NodeSettings;
}

/** The settings of the config file that applies, or undefined when there is none. */
export async function loadConfigFile(options: LoadConfigOptions): Promise<LoadedConfig | undefined> {
  // Loaded on demand: data commands never need it, and every command pays for what it imports.
  const { cosmiconfig } = await import('cosmiconfig');
  const explorer = cosmiconfig('optimystic', {
    searchPlaces: [...configSearchPlaces],
    searchStrategy: 'none',
    cache: false,
  });
  let path: string | undefined;
  if (options.path !== undefined) {
    path = resolve(options.path);
    if (!existsSync(path))
      throw new EngineError('CONFIG_INVALID', `config file ${path} does not exist`, { source: 'file' });
  } else {
    const inDataDir = join(options.dataDir, dataDirConfigName);
    if (existsSync(inDataDir)) path = inDataDir;
  }
  try {
    let result;
    if (path !== undefined) {
      checkSize(path);
      result = await explorer.load(path);
    } else {
      result = await explorer.search(options.cwd ?? process.cwd());
      if (result !== null) checkSize(result.filepath);
    }
    if (result === null) return undefined;
    const config: unknown = result.isEmpty === true ? {} : result.config;
    return { path: result.filepath, settings: validateConfigFile(config, result.filepath) };
  } catch (error) {
    if (error instanceof EngineError) throw error;
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new EngineError(
      'CONFIG_INVALID',
      `config file ${path ?? 'in ' + (options.cwd ?? process.cwd())} could not be read: ${detail}`,
      { source: 'file' },
      { cause: error },
    );
  }
}

function checkSize(path: string): void {
  const stats = statSync(path);
  if (stats.isDirectory()) throw new EngineError('CONFIG_INVALID', `config file ${path} is a directory`);
  if (stats.size > configBounds.fileBytesMax)
    throw new EngineError(
      'CONFIG_INVALID',
      `config file ${path} is over ${configBounds.fileBytesMax} bytes; is it the right file?`,
    );
}
