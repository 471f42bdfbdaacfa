/**
 * The node configuration as a command needs it, in one call: flags, OPTIMYSTIC_* environment, config
 * file, defaults. The validators (and the multiaddr parser they use) load on first use, so commands
 * that never configure a node do not pay for them.
 */
import type { NodeConfig, NodeSettings } from './schema.js';

export interface LoadNodeConfigInput {
  readonly dataDir: string;
  /** Flag values as parsed by the command line (unvalidated; `capacityBytes` may be "10GB"). */
  readonly flags?: { readonly [K in keyof NodeSettings]?: unknown };
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** An explicit config file (`--config`). */
  readonly configPath?: string;
  /** Where to look for optimystic.config.* / .optimysticrc (default: the working directory). */
  readonly cwd?: string;
}

export interface ResolvedNodeConfig {
  readonly config: NodeConfig;
  /** The config file that applied, if any. */
  readonly file: string | undefined;
}

export async function loadNodeConfig(input: LoadNodeConfigInput): Promise<ResolvedNodeConfig> {
  const [{ resolveNodeConfig, settingsFromEnv, validateSettings, flagSource }, { loadConfigFile }] =
    await Promise.all([import('./schema.js'), import('./load.js')]);
  const flags = validateSettings(input.flags ?? {}, flagSource);
  const env = settingsFromEnv(input.env ?? {});
  const loaded = await loadConfigFile({
    dataDir: input.dataDir,
    ...(input.cwd === undefined ? {} : { cwd: input.cwd }),
    ...(input.configPath === undefined ? {} : { path: input.configPath }),
  });
  const config = resolveNodeConfig({
    flags,
    env,
    ...(loaded === undefined ? {} : { file: loaded.settings, filePath: loaded.path }),
  });
  return { config, file: loaded?.path };
}

/** The network a light client (`--connect`) speaks: OPTIMYSTIC_NETWORK, else the config file's, else "default". */
export async function clientNetwork(input: Omit<LoadNodeConfigInput, 'flags'>): Promise<string> {
  const { settingsFromEnv, defaultNodeConfig } = await import('./schema.js');
  const fromEnv = settingsFromEnv(input.env ?? {}).network;
  if (fromEnv !== undefined) return fromEnv;
  const { loadConfigFile } = await import('./load.js');
  const loaded = await loadConfigFile({
    dataDir: input.dataDir,
    ...(input.cwd === undefined ? {} : { cwd: input.cwd }),
    ...(input.configPath === undefined ? {} : { path: input.configPath }),
  });
  return loaded?.settings.network ?? defaultNodeConfig.network;
}
