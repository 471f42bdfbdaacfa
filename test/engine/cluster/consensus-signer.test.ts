import { expect } from 'chai';
import { nodeVoteSigner } from '../../../src/engine/cluster/consensus-signer.js';
import { voteMessage, verifyVote } from '../../../src/engine/consensus/votes.js';
import { peerIdOf, privateKeyFromSeed } from '../../../src/engine/network/index.js';
import { seedFromPkcs8 } from '../../../src/engine/node/identity.js';
import {
  Ed25519Identity,
  rememberSignature,
  verifyEd25519,
} from '../../../src/engine/transactions/certifier.js';

describe('consensus members are peer ids', () => {
  const identity = Ed25519Identity.generate();
  const other = Ed25519Identity.generate();
  const message = Buffer.from('optimystic vote');

  it('names a node by the peer id libp2p derives from the same seed', async () => {
    const privateKey = await privateKeyFromSeed(seedFromPkcs8(identity.toPkcs8()));
    expect(identity.peerId).to.equal(peerIdOf(privateKey));
    expect(nodeVoteSigner(identity).id).to.equal(peerIdOf(privateKey));
  });

  it('verifies a signature by the node key under its peer id, and under no other id', () => {
    const signer = nodeVoteSigner(identity);
    const signature = signer.sign(message);
    expect(verifyEd25519(signer.id, message, signature)).to.equal(true);
    // The raw base64url key (solo data dirs) still verifies.
    expect(verifyEd25519(identity.id, message, signature)).to.equal(true);
    expect(verifyEd25519(other.peerId, message, signature)).to.equal(false);
    expect(verifyEd25519(signer.id, Buffer.from('another message'), signature)).to.equal(false);
    const forged = nodeVoteSigner(other).sign(message);
    expect(verifyEd25519(signer.id, message, forged)).to.equal(false);
  });

  it('fails garbage ids and signatures without throwing', () => {
    const signature = nodeVoteSigner(identity).sign(message);
    const id = identity.peerId;
    for (const bad of [
      '',
      'not a peer id',
      id.slice(0, 51),
      `${id}x`,
      id.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')),
      'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
      '0'.repeat(52),
      'A'.repeat(43),
      '💥'.repeat(26),
    ])
      expect(verifyEd25519(bad, message, signature), bad).to.equal(false);
    expect(verifyEd25519(id, message, '')).to.equal(false);
    expect(verifyEd25519(id, message, '!!!')).to.equal(false);
    expect(verifyEd25519(undefined as unknown as string, message, signature)).to.equal(false);
  });

  it('signs consensus votes that verify under the peer id', () => {
    const signer = nodeVoteSigner(identity);
    const fields = {
      network: 'net',
      blockId: 'block',
      membership: 'm',
      slot: 3,
      ballot: { round: 2, leader: signer.id },
      digest: 'd',
    };
    const signature = signer.sign(voteMessage(fields));
    expect(verifyVote(signer.id, fields, signature)).to.equal(true);
    expect(verifyVote(signer.id, { ...fields, slot: 4 }, signature)).to.equal(false);
    expect(verifyVote(other.peerId, fields, signature)).to.equal(false);
  });

  it('remembers good signatures only for the exact bytes they cover', () => {
    const signer = nodeVoteSigner(identity);
    const signed = Buffer.from('optimystic remembered vote');
    const signature = signer.sign(signed);
    // Remembered with its message: checked again, and again after the caller reuses its buffer.
    expect(verifyEd25519(signer.id, signed, signature)).to.equal(true);
    const reused = Buffer.from(signed);
    reused[0] = reused[0]! ^ 1;
    expect(verifyEd25519(signer.id, reused, signature)).to.equal(false);
    expect(verifyEd25519(signer.id, signed.subarray(1), signature)).to.equal(false);
    expect(verifyEd25519(signer.id, Buffer.concat([signed, Buffer.from([0])]), signature)).to.equal(false);
    // Under another member the same signature is checked afresh, and fails.
    expect(verifyEd25519(other.peerId, signed, signature)).to.equal(false);
    // What is remembered is taken as good without a check: only signatures made or verified here.
    const made = other.sign(signed);
    rememberSignature(identity.id, signed, made);
    expect(verifyEd25519(identity.id, signed, made)).to.equal(true);
    expect(verifyEd25519(identity.id, Buffer.from('something else'), made)).to.equal(false);
  });
});
