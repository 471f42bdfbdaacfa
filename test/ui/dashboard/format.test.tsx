import { expect } from 'chai';
import {
  compactAddress,
  ellipsizeEnd,
  ellipsizeMiddle,
  fitList,
  formatBytes,
  formatClock,
  formatCount,
  formatDuration,
  formatLatency,
  formatRate,
  gauge,
  printable,
  shortAddress,
  shortPeerId,
  sparkline,
} from '../../../src/ui/dashboard/format.js';

const peerId = '12D3KooWRfYU5FaY9SmJcRqDyVKyzpXYXvZQhVFZHPdVdvxGJTKx';

describe('dashboard formatting', () => {
  it('formats bytes in binary units with at most three significant digits', () => {
    expect(formatBytes(0)).to.equal('0 B');
    expect(formatBytes(1023)).to.equal('1023 B');
    expect(formatBytes(1024)).to.equal('1.0 KiB');
    expect(formatBytes(1536)).to.equal('1.5 KiB');
    expect(formatBytes(512 * 1024)).to.equal('512 KiB');
    expect(formatBytes(256 * 1024 * 1024)).to.equal('256 MiB');
    expect(formatBytes(3.4 * 1024 ** 3)).to.equal('3.4 GiB');
    expect(formatBytes(2 * 1024 ** 4)).to.equal('2.0 TiB');
  });

  it('moves to the next unit instead of showing 1024 of the smaller one', () => {
    expect(formatBytes(1024 * 1024 - 1)).to.equal('1.0 MiB');
  });

  it('shows a dash for bytes that are negative or not numbers', () => {
    expect(formatBytes(-1)).to.equal('—');
    expect(formatBytes(Number.NaN)).to.equal('—');
  });

  it('formats durations by their two largest units', () => {
    expect(formatDuration(0)).to.equal('0s');
    expect(formatDuration(45_900)).to.equal('45s');
    expect(formatDuration(12 * 60_000 + 5_000)).to.equal('12m 05s');
    expect(formatDuration(3 * 3600_000 + 4 * 60_000 + 59_000)).to.equal('3h 04m');
    expect(formatDuration(2 * 86_400_000 + 3 * 3600_000)).to.equal('2d 03h');
    expect(formatDuration(-5)).to.equal('—');
  });

  it('formats latencies with a decimal only below ten', () => {
    expect(formatLatency(0.42)).to.equal('0.4 ms');
    expect(formatLatency(8.44)).to.equal('8.4 ms');
    expect(formatLatency(42.4)).to.equal('42 ms');
    expect(formatLatency(1234)).to.equal('1.2 s');
    expect(formatLatency(12_600)).to.equal('13 s');
    expect(formatLatency(Number.POSITIVE_INFINITY)).to.equal('—');
  });

  it('formats rates compactly', () => {
    expect(formatRate(0)).to.equal('0');
    expect(formatRate(2.46)).to.equal('2.5');
    expect(formatRate(140.2)).to.equal('140');
    expect(formatRate(1234)).to.equal('1.2k');
    expect(formatRate(15_400)).to.equal('15k');
    expect(formatRate(3_400_000)).to.equal('3.4M');
  });

  it('formats counts with thousands separators', () => {
    expect(formatCount(1234567)).to.equal('1,234,567');
  });

  it('formats clock times as local hours, minutes and seconds', () => {
    const at = new Date(2025, 0, 2, 3, 4, 5).getTime();
    expect(formatClock(at)).to.equal('03:04:05');
  });

  it('neutralises control characters and bidirectional overrides from the network', () => {
    expect(printable('evil\u001b[2Jtext')).to.equal('evil?[2Jtext');
    expect(printable('two\nlines\ttab')).to.equal('two lines tab');
    expect(printable('a\u202eb\u0085c')).to.equal('a?b?c');
  });

  it('ellipsizes at the end or in the middle to an exact width', () => {
    expect(ellipsizeEnd('abcdefgh', 5)).to.equal('abcd…');
    expect(ellipsizeEnd('abc', 5)).to.equal('abc');
    expect(ellipsizeEnd('abc', 0)).to.equal('');
    expect(ellipsizeMiddle('abcdefghij', 7)).to.equal('abc…hij');
    expect(ellipsizeMiddle('abcdefghij', 6)).to.equal('abc…ij');
  });

  it('shortens peer ids to their head and distinguishing tail', () => {
    expect(shortPeerId(peerId)).to.equal('12D3…dvxGJTKx');
    expect(shortPeerId('QmShort')).to.equal('QmShort');
  });

  it('drops the own /p2p suffix from a full multiaddr and cuts its middle when too long', () => {
    expect(shortAddress(`/ip4/203.0.113.7/tcp/4001/p2p/${peerId}`, 80, peerId)).to.equal(
      '/ip4/203.0.113.7/tcp/4001',
    );
    expect(shortAddress('/ip4/203.0.113.7/tcp/4001', 15)).to.equal('/ip4/20…cp/4001');
  });

  it('compacts multiaddrs to host:port, keeping what follows with peer ids shortened', () => {
    expect(compactAddress('/ip4/10.0.0.5/tcp/4001')).to.equal('10.0.0.5:4001');
    expect(compactAddress('/ip6/::1/tcp/4001')).to.equal('[::1]:4001');
    expect(compactAddress('/dns4/node.example.org/tcp/443/wss')).to.equal('node.example.org:443/wss');
    expect(compactAddress('/ip4/10.0.0.5/udp/4001/quic-v1')).to.equal('10.0.0.5:4001/udp/quic-v1');
    expect(compactAddress(`/ip4/10.0.0.5/tcp/4001/p2p/${peerId}`, peerId)).to.equal('10.0.0.5:4001');
    expect(compactAddress(`/ip4/1.2.3.4/tcp/4001/p2p/${peerId}/p2p-circuit`)).to.equal(
      '1.2.3.4:4001/p2p/12D3…dvxGJTKx/p2p-circuit',
    );
    expect(compactAddress('/unix/tmp/socket')).to.equal('/unix/tmp/socket');
  });

  it('fits as many list items as the width allows and counts the rest', () => {
    expect(fitList(['aaaa', 'bbbb', 'cccc'], 20)).to.equal('aaaa  bbbb  cccc');
    expect(fitList(['aaaa', 'bbbb', 'cccc'], 13)).to.equal('aaaa  bbbb +1');
    expect(fitList(['aaaa', 'bbbb', 'cccc'], 12)).to.equal('aaaa +2');
    expect(fitList(['aaaa', 'bbbb', 'cccc'], 9)).to.equal('aaaa +2');
    expect(fitList(['a-very-long-first-item', 'b'], 10)).to.equal('a-ver…item');
    expect(fitList(['a-very-long-first-item', 'b'], 16)).to.equal('a-very…t-item +1');
    expect(fitList([], 10)).to.equal('');
  });

  it('draws a sparkline of the newest samples scaled to the largest, newest at the right', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8)).to.equal('▁▂▃▄▅▆▇█');
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4)).to.equal('▆▇▇█');
    expect(sparkline([5, 10], 4)).to.equal('  ▅█');
    expect(sparkline([], 3)).to.equal('   ');
  });

  it('keeps a small positive sample above the zero bar', () => {
    expect(sparkline([0, 1, 1000], 3)).to.equal('▁▂█');
    expect(sparkline([0, 0, 0], 3)).to.equal('▁▁▁');
    expect(sparkline([Number.NaN, -3, 2], 3)).to.equal('▁▁█');
  });

  it('draws a gauge exactly as wide as asked, in eighths of a cell', () => {
    const quarter = gauge(0.25, 8);
    expect(quarter).to.deep.equal({ filled: '██', empty: '░░░░░░' });
    const bit = gauge(0.3, 8);
    expect(bit.filled).to.equal('██▍');
    expect(bit.filled.length + bit.empty.length).to.equal(8);
    expect(gauge(1, 4)).to.deep.equal({ filled: '████', empty: '' });
    expect(gauge(1.7, 4)).to.deep.equal({ filled: '████', empty: '' });
  });

  it('shows any use as a sliver and never shows a store short of full as full', () => {
    expect(gauge(0.0001, 10).filled).to.equal('▏');
    expect(gauge(0, 10).filled).to.equal('');
    expect(gauge(0.9999, 10).filled).to.equal('█████████▉');
  });
});
