export * from './errors.js';
export * from './assert.js';
export * from './clock.js';
export * from './rng.js';
export * from './ids.js';
export * from './limits.js';
export * from './codec.js';
