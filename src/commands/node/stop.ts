import { Flags } from '@oclif/core';
import { EngineError, isNoNodeRunning, waitForNodeExit } from '../../engine/index.js';
import { DataCommand } from '../../ui/cli/index.js';

export default class NodeStop extends DataCommand<typeof NodeStop> {
  static override summary = 'Stop the node running on the data directory, gracefully';
  static override description =
    'Asks the node on --data to stop and waits until it has: requests in flight finish, the store is ' +
    'flushed and closed, the lock is released and the process exits. With no node running it says so ' +
    'and exits 0 (the node is stopped either way). A node that takes longer than --timeout fails with ' +
    'TIMEOUT (exit 6). Only a node on this machine can be stopped: not with --connect.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'A node on another data directory',
      command: '<%= config.bin %> <%= command.id %> --data ~/.optimystic-2',
    },
  ];
  static override flags = {
    timeout: Flags.integer({
      description: 'seconds to wait for the node to finish stopping',
      min: 1,
      default: 60,
      helpValue: 'SECONDS',
    }),
  };

  override async run(): Promise<void> {
    if (this.flags.connect !== undefined)
      throw new EngineError(
        'BAD_INPUT',
        'node stop stops the node on --data on this machine; it cannot stop a node reached with --connect',
      );
    let stopped: { peerId: string; pid: number };
    try {
      stopped = await this.withNode(async (node) => {
        const { peerId, pid } = await node.status();
        await node.stop();
        return { peerId, pid };
      });
    } catch (error) {
      if (!isNoNodeRunning(error)) throw error;
      if (this.out.mode === 'json') await this.out.json({ stopped: false, running: false });
      else await this.out.say(`no node is running on ${this.dataDir}`);
      return;
    }
    await waitForNodeExit(this.dataDir, stopped.pid, this.flags.timeout * 1000);
    if (this.out.mode === 'json') await this.out.json({ stopped: true, ...stopped });
    else await this.out.say(`stopped node ${stopped.peerId} (pid ${stopped.pid})`);
  }
}
