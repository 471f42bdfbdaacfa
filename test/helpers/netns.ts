/**
 * Hosts for multi-process tests in Linux network namespaces (SPEC §11: "partitions … in network
 * namespaces where available"): one namespace per host, each with one interface (`eth0`, 10.77.0.N),
 * cabled by a veth pair to a hub namespace that holds two bridges. Every host starts on bridge A; a
 * partition moves one side's cables to bridge B, so packets between the sides are dropped without a
 * reset or an ICMP answer — what a pulled cable or a firewall does, and what a connection gater
 * (which closes connections cleanly) does not show. Healing moves every cable back.
 *
 * Needs root and iproute2 (`ip`); `available()` says why not otherwise. Nothing outside the
 * namespaces it creates is touched, and `destroy()` deletes them all (deleting a namespace deletes
 * its interfaces).
 */
import { spawnSync } from 'node:child_process';

const subnet = '10.77.0';

function ip(args: readonly string[]): { ok: boolean; output: string } {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() };
}

function mustIp(args: readonly string[]): void {
  const result = ip(args);
  if (!result.ok) throw new Error(`ip ${args.join(' ')} failed: ${result.output}`);
}

export class NetnsHosts {
  private readonly hub: string;
  private created = false;

  /** `count` hosts; names carry `tag` (keep it short: interface names are at most 15 characters). */
  constructor(
    readonly count: number,
    private readonly tag: string,
  ) {
    this.hub = `${tag}-hub`;
  }

  /** Undefined when namespaces can be made here; otherwise why not (for a skipped test's message). */
  static available(): string | undefined {
    if (process.platform !== 'linux') return 'network namespaces are a Linux feature';
    if (process.getuid?.() !== 0) return 'making network namespaces needs root';
    const probe = `optprobe${process.pid}`;
    const added = ip(['netns', 'add', probe]);
    if (!added.ok) return `ip netns add failed: ${added.output || 'is iproute2 installed?'}`;
    ip(['netns', 'del', probe]);
    return undefined;
  }

  /** The namespace of host `i`. */
  namespace(i: number): string {
    return `${this.tag}-n${i}`;
  }

  /** The address host `i` listens on. */
  address(i: number): string {
    return `${subnet}.${i + 1}`;
  }

  create(): void {
    this.created = true;
    mustIp(['netns', 'add', this.hub]);
    mustIp(['-n', this.hub, 'link', 'set', 'lo', 'up']);
    for (const bridge of ['brA', 'brB']) {
      mustIp(['-n', this.hub, 'link', 'add', bridge, 'type', 'bridge']);
      mustIp(['-n', this.hub, 'link', 'set', bridge, 'up']);
    }
    for (let i = 0; i < this.count; i++) {
      const ns = this.namespace(i);
      const cable = this.cable(i);
      mustIp(['netns', 'add', ns]);
      mustIp(['link', 'add', cable, 'netns', this.hub, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      mustIp(['-n', this.hub, 'link', 'set', cable, 'master', 'brA']);
      mustIp(['-n', this.hub, 'link', 'set', cable, 'up']);
      mustIp(['-n', ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', 'eth0']);
      mustIp(['-n', ns, 'link', 'set', 'eth0', 'up']);
      mustIp(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  }

  /** Hosts in `side` can reach each other and nobody else; the rest likewise among themselves. */
  partition(side: readonly number[]): void {
    for (let i = 0; i < this.count; i++)
      mustIp(['-n', this.hub, 'link', 'set', this.cable(i), 'master', side.includes(i) ? 'brB' : 'brA']);
  }

  heal(): void {
    for (let i = 0; i < this.count; i++)
      mustIp(['-n', this.hub, 'link', 'set', this.cable(i), 'master', 'brA']);
  }

  /** Deletes every namespace this made (their interfaces go with them). Safe to call twice. */
  destroy(): void {
    if (!this.created) return;
    this.created = false;
    for (let i = 0; i < this.count; i++) ip(['netns', 'del', this.namespace(i)]);
    ip(['netns', 'del', this.hub]);
  }

  /** The hub side of host i's cable. */
  private cable(i: number): string {
    return `${this.tag.slice(0, 10)}h${i}`;
  }
}
