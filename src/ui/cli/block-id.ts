import { EngineError, isBlockId, type BlockId, type BlockTransform } from '../../engine/index.js';

/** Checks a block id argument before it reaches the engine. */
export function parseBlockIdArgument(text: string): BlockId {
  if (!isBlockId(text)) {
    throw new EngineError(
      'BAD_INPUT',
      `${JSON.stringify(text)} is not a block id (43 base64url characters); find ids with: optimystic collection info NAME`,
    );
  }
  return text;
}

/** A one-cell summary of a block transform for tables: what kind of change, and to which fields. */
export function describeTransform(transform: BlockTransform): string {
  switch (transform.kind) {
    case 'insert':
      return `insert ${transform.block.header.type}`;
    case 'delete':
      return 'delete';
    case 'update': {
      const fields = [...new Set(transform.ops.map((op) => `${op.op} ${op.field}`))];
      return `update: ${fields.join(', ')}`;
    }
  }
}
