/**
 * Consensus members of a networked node are libp2p peer ids, and a member signs its votes with the
 * node's identity key: the same Ed25519 seed libp2p is given (see node/identity.ts), so the peer id
 * the network authenticates is the key that verifies the votes (`verifyEd25519` reads peer ids).
 */
import type { VoteSigner } from '../consensus/types.js';
import { rememberSignature, type Ed25519Identity } from '../transactions/certifier.js';

/** The vote signer of a node: member id = its peer id, signatures by its identity key. */
export function nodeVoteSigner(identity: Pick<Ed25519Identity, 'peerId' | 'sign'>): VoteSigner {
  const id = identity.peerId;
  return {
    id,
    sign: (message) => {
      const signature = identity.sign(message);
      // Its own votes come back in certificates: they need no verification here.
      rememberSignature(id, message, signature);
      return signature;
    },
  };
}
