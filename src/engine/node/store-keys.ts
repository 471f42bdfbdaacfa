/** Keys a node keeps in its store beside the blocks (the block store's own prefixes are in storage/). */

/** The members of its network a node has met: `n/<peer id>` (see cluster-wiring.ts). */
export const memberPrefix = 'n/';
