export * from './types.js';
export * from './values.js';
export * from './votes.js';
export * from './persisted.js';
export * from './core.js';
export * from './driver.js';
export * from './memory-network.js';
export * from './consensus-certifier.js';
