import { setTimeout as sleep } from 'node:timers/promises';
import { Args, Flags } from '@oclif/core';
import { isEngineError, type Database, type Json, type ReadOptions } from '../../engine/index.js';
import { DataCommand, jsonLine } from '../../ui/cli/index.js';

/**
 * How often --follow looks for new entries. Each poll opens the data directory briefly and closes it
 * again, so other processes can write to it in between.
 */
const followPollMs = 1000;

type Entry = { readonly index: number; readonly value: Json };

export default class CollectionRead extends DataCommand<typeof CollectionRead> {
  static override summary = 'Stream the entries of a Diary in order';
  static override description =
    'Streams {"index","value"} records (indexes start at 0): NDJSON when piped or with --json, a ' +
    'table on a terminal. --from N starts at index N (with --reverse, at most N, going down).\n\n' +
    '--follow prints what is there, then keeps checking for new entries every second until Ctrl-C, ' +
    'which ends it cleanly with exit 0. It opens the data directory only for each check, so other ' +
    'commands can append in between (one that starts during a check gets DATA_DIR_BUSY, exit 6, ' +
    'and can simply be retried); with --connect it keeps one connection to the node. Without ' +
    '--follow, Ctrl-C stops the stream with exit 130.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> transfers',
    {
      description: 'The 10 newest entries',
      command: '<%= config.bin %> <%= command.id %> transfers --reverse --limit 10',
    },
    {
      description: 'Tail new entries as they are appended',
      command: '<%= config.bin %> <%= command.id %> transfers --follow',
    },
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'diary collection name', required: true }),
  };
  static override flags = {
    from: Flags.integer({ description: 'first index to return', min: 0, helpValue: 'N' }),
    limit: Flags.integer({
      description: 'stop after this many entries',
      min: 1,
      helpValue: 'N',
      exclusive: ['follow'],
    }),
    reverse: Flags.boolean({ description: 'newest entry first', exclusive: ['follow'] }),
    follow: Flags.boolean({
      description: 'keep printing new entries until Ctrl-C',
      exclusive: ['limit', 'reverse'],
    }),
  };

  override async run(): Promise<void> {
    const { name } = this.args;
    const { from, limit, reverse, follow } = this.flags;
    const stream = this.out.stream<Entry>(['INDEX', 'VALUE'], (entry) => [
      String(entry.index),
      jsonLine(entry.value),
    ]);

    if (!follow) {
      const options: ReadOptions = {
        ...(from === undefined ? {} : { from }),
        ...(limit === undefined ? {} : { limit }),
        ...(reverse ? { reverse } : {}),
      };
      await this.withDatabase((db) => this.printStream(stream, db.read(name, options)));
      return;
    }

    // Follow: Ctrl-C is the normal way out, so it ends the loop without an error.
    let next = from ?? 0;
    const poll = async (db: Database): Promise<void> => {
      for await (const entry of db.read(name, { from: next })) {
        if (this.interrupt.interrupted) break;
        await stream.push(entry);
        next = entry.index + 1;
      }
    };
    const pause = async (): Promise<void> => {
      await stream.flush();
      await sleep(followPollMs, undefined, { signal: this.interrupt.signal }).catch(() => undefined);
    };
    if (this.flags.connect !== undefined) {
      // A light client keeps one libp2p session for the whole follow: a new one per check would cost
      // it and the node a handshake every second.
      await this.withDatabase(async (db) => {
        while (!this.interrupt.interrupted) {
          await poll(db);
          await pause();
        }
      });
    } else {
      let polledOnce = false;
      while (!this.interrupt.interrupted) {
        try {
          await this.withDatabase(poll);
          polledOnce = true;
        } catch (error) {
          // Another process writing between our checks is expected; try again at the next one. A node
          // that started on the directory holds it until it stops: --offline cannot go through it.
          const nodeStarted =
            this.flags.offline && isEngineError(error) && error.details?.['pid'] !== undefined;
          if (!(polledOnce && isEngineError(error, 'DATA_DIR_BUSY')) || nodeStarted) throw error;
        }
        await pause();
      }
    }
    await stream.flush();
  }
}
