// Everything a command or the dashboard calls goes through this module.
export * from './base/index.js';
export type * from './storage/block.js';
export type * from './storage/block-store.js';
export type * from './transactions/tx-types.js';
export { parseTxLine } from './transactions/tx-parse.js';
export type * from './node/database-api.js';
export { openDatabase } from './node/embedded.js';
export * from './crypto/index.js';
