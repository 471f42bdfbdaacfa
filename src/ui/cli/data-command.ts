import { Command, type Interfaces } from '@oclif/core';
import { chalkStderr } from 'chalk';
import { stat } from 'node:fs/promises';
import {
  clientNetwork,
  EngineError,
  reachDatabase,
  reachNode,
  type Database,
  type ReachOptions,
  type RemoteNode,
} from '../../engine/index.js';
import { describeFailure, reportFailure, usageError } from './failure.js';
import { envTruthy, globalFlags, jsonEnvVar, resolveDataDir } from './global-flags.js';
import { InterruptWatch } from './interrupt.js';
import { Output, OutputClosed, outputMode, type RecordStream } from './output.js';

/** Records printed between two turns of the event loop (where a Ctrl-C is noticed). */
const interruptCheckEvery = 64;

export type DataFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof DataCommand)['baseFlags'] & T['flags']
>;
export type DataArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * Base of every command that reads or writes data. It owns what all of them share: the global flags,
 * opening and closing the database, Ctrl-C, the output mode, and rendering errors with the exit code
 * from exit-codes.ts. A subclass declares its metadata and implements `run` as one engine call plus
 * rendering.
 */
export abstract class DataCommand<T extends typeof Command> extends Command {
  static override baseFlags = globalFlags;
  static override enableJsonFlag = true;

  protected flags!: DataFlags<T>;
  protected args!: DataArgs<T>;
  protected out!: Output;
  protected readonly interrupt = new InterruptWatch();

  override async init(): Promise<void> {
    await super.init();
    try {
      const { args, flags } = await this.parse({
        flags: this.ctor.flags,
        baseFlags: (super.ctor as typeof DataCommand).baseFlags,
        enableJsonFlag: this.ctor.enableJsonFlag,
        args: this.ctor.args,
        strict: this.ctor.strict,
      });
      this.flags = flags as DataFlags<T>;
      this.args = args as DataArgs<T>;
    } catch (error) {
      // We did parse; it failed. (Stops oclif warning that the command never parsed its arguments.)
      this.parsed = true;
      throw usageError(error, this.commandLine());
    }
    this.out = new Output(outputMode(this.jsonEnabled(), process.stdout.isTTY === true));
    this.interrupt.install();
    await this.checkDataDir();
  }

  /**
   * A data directory path naming something that is not a directory (a file) is refused before
   * anything uses it: BAD_INPUT for --data, CONFIG_INVALID for OPTIMYSTIC_DATA or the default.
   */
  private async checkDataDir(): Promise<void> {
    const dir = this.dataDir;
    const found = await stat(dir).catch(() => undefined);
    if (found === undefined || found.isDirectory()) return;
    const given = this.argv.some((arg) => arg === '--data' || arg.startsWith('--data='));
    const setting = given
      ? `--data ${dir}`
      : process.env['OPTIMYSTIC_DATA']
        ? `OPTIMYSTIC_DATA=${dir}`
        : `the default data directory ${dir}`;
    throw new EngineError(
      given ? 'BAD_INPUT' : 'CONFIG_INVALID',
      `${setting} is not a directory; point it at a data directory`,
      { dir },
    );
  }

  /** --json on the command line, OPTIMYSTIC_JSON=1, or oclif's OPTIMYSTIC_CONTENT_TYPE=json. */
  override jsonEnabled(): boolean {
    return super.jsonEnabled() || (this.ctor.enableJsonFlag && envTruthy(process.env[jsonEnvVar]));
  }

  /** The data directory: --data, else OPTIMYSTIC_DATA, else ~/.optimystic. */
  protected get dataDir(): string {
    return resolveDataDir(this.flags.data);
  }

  /**
   * How this command reaches data (SPEC §2.1): --connect → light client of a remote node; a node
   * running on --data → its control socket; otherwise the data directory, embedded. --offline skips
   * the first two. Stale node files are cleaned up with a note on stderr.
   */
  protected async reachOptions(): Promise<ReachOptions> {
    const { connect, offline } = this.flags;
    return {
      dataDir: this.dataDir,
      offline,
      ...(connect === undefined
        ? {}
        : {
            connect,
            network: await clientNetwork({
              dataDir: this.dataDir,
              env: process.env,
              ...(process.env['OPTIMYSTIC_CONFIG'] ? { configPath: process.env['OPTIMYSTIC_CONFIG'] } : {}),
            }),
          }),
      notice: (message) => this.notice(message),
      createIfMissing: this.createsDatabase,
    };
  }

  /**
   * Whether this command may create the database in a directory that holds none. Only commands that
   * create something do; the rest see an empty database there and leave the directory as it was, so
   * a mistyped --data does not leave a new database behind.
   */
  protected get createsDatabase(): boolean {
    return false;
  }

  /**
   * A one-line note on stderr (stale files cleaned up, and the like); never part of the output. Each
   * note is printed once per command (`read --follow` opens the directory again at every check).
   */
  protected notice(message: string): void {
    if (this.noticed.has(message)) return;
    this.noticed.add(message);
    process.stderr.write(`${chalkStderr.yellow('note')}: ${message}\n`);
  }

  private readonly noticed = new Set<string>();

  /**
   * Opens the database (through a running node when there is one), runs `work`, and always closes
   * it, whether `work` succeeds, throws or is interrupted. An error from `work` wins over an error
   * from closing.
   */
  protected async withDatabase<R>(work: (db: Database) => Promise<R>): Promise<R> {
    return this.using(await reachDatabase(await this.reachOptions()), work);
  }

  /** Like withDatabase, for commands that need a running node (on --data, or --connect). */
  protected async withNode<R>(work: (node: RemoteNode) => Promise<R>): Promise<R> {
    return this.using(await reachNode(await this.reachOptions()), work);
  }

  private async using<D extends { close(): Promise<void> }, R>(
    db: D,
    work: (db: D) => Promise<R>,
  ): Promise<R> {
    let result: R;
    try {
      result = await work(db);
    } catch (error) {
      await db
        .close()
        .catch((closeError: unknown) => this.debug('close after failure failed: %O', closeError));
      throw error;
    }
    await db.close();
    return result;
  }

  /** Throws INTERRUPTED if Ctrl-C was pressed; streaming loops call it between items. */
  protected throwIfInterrupted(): void {
    if (this.interrupt.interrupted) {
      throw new EngineError(
        'INTERRUPTED',
        'interrupted: output stopped early; run the command again for the rest',
      );
    }
  }

  /**
   * Prints every record of a stream, stopping early (INTERRUPTED) on Ctrl-C. On any failure the rows
   * a terminal table still buffers are printed first: they are correct, only the rest is missing.
   */
  protected async printStream<T>(
    stream: RecordStream<T>,
    records: AsyncIterable<T> | Iterable<T>,
  ): Promise<void> {
    try {
      let count = 0;
      for await (const record of records) {
        // Writes to a pipe are synchronous on Linux and a fetched page is iterated in microtasks:
        // without a turn of the event loop now and then, Ctrl-C would only be seen after the page.
        if (++count % interruptCheckEvery === 0) await new Promise((resolve) => setImmediate(resolve));
        this.throwIfInterrupted();
        await stream.push(record);
      }
    } catch (error) {
      await stream.flush().catch(() => undefined);
      throw error;
    }
    await stream.end();
  }

  /** Renders any failure: one line on stderr, or the JSON error document on stdout with --json. */
  override catch(error: Error & { exitCode?: number }): Promise<void> {
    // The reader of stdout left (`… | head`): it got what it wanted, and there is no one to tell.
    if (!(error instanceof OutputClosed)) {
      reportFailure(describeFailure(error), { json: this.jsonEnabled(), verbose: this.verbose });
    }
    return Promise.resolve();
  }

  override async finally(error: Error | undefined): Promise<void> {
    this.interrupt.uninstall();
    await super.finally(error);
  }

  /** --verbose, readable even when parsing the other flags failed. */
  private get verbose(): boolean {
    // Unset when parsing failed, whatever the declared type says.
    if (this.flags !== undefined) return this.flags.verbose;
    return this.argv.includes('--verbose') || envTruthy(process.env['OPTIMYSTIC_VERBOSE']);
  }

  /** "optimystic collection get", for messages that point at --help. */
  protected commandLine(): string {
    return [this.config.bin, ...(this.id ?? '').split(':')].filter((part) => part !== '').join(' ');
  }
}
