import { expect } from 'chai';
import { ManualClock } from '../../../src/engine/base/clock.js';
import { PeerGuard, type Admission } from '../../../src/engine/network/peer-guard.js';

function admitted(result: Admission | string): Admission {
  expect(result).to.be.an('object');
  return result as Admission;
}

describe('peer guard', () => {
  it('limits the streams one peer holds open and frees a slot on release', () => {
    const guard = new PeerGuard({ clock: new ManualClock() }, { streamsPerPeerMax: 2 });
    const first = admitted(guard.admit('a'));
    admitted(guard.admit('a'));
    expect(guard.admit('a')).to.equal('peer-streams');
    admitted(guard.admit('b'));
    first.release();
    first.release();
    expect(guard.openStreams('a')).to.equal(1);
    admitted(guard.admit('a'));
  });

  it('limits the streams open across all peers', () => {
    const guard = new PeerGuard({ clock: new ManualClock() }, { inboundStreamsMax: 3 });
    for (const peer of ['a', 'b', 'c']) admitted(guard.admit(peer));
    expect(guard.admit('d')).to.equal('node-streams');
  });

  it('rate-limits a peer after its burst and refills with time', () => {
    const clock = new ManualClock();
    const guard = new PeerGuard({ clock }, { requestsPerPeerPerSec: 10, requestsPerPeerBurst: 5 });
    for (let i = 0; i < 5; i++) admitted(guard.admit('a')).release();
    expect(guard.admit('a')).to.equal('rate');
    admitted(guard.admit('b')).release();
    clock.advance(100);
    admitted(guard.admit('a')).release();
    expect(guard.admit('a')).to.equal('rate');
    clock.advance(10_000);
    for (let i = 0; i < 5; i++) admitted(guard.admit('a')).release();
    expect(guard.admit('a')).to.equal('rate');
  });

  it('remembers a bounded number of peers, keeping those with open streams', () => {
    const guard = new PeerGuard({ clock: new ManualClock() }, { peersTrackedMax: 10 });
    const held = admitted(guard.admit('busy'));
    for (let i = 0; i < 1000; i++) admitted(guard.admit(`p${i}`)).release();
    expect(guard.trackedPeers()).to.be.at.most(10);
    expect(guard.openStreams('busy')).to.equal(1);
    held.release();
    expect(guard.openStreams()).to.equal(0);
  });
});
