/** Re-exports for tests, plus the one helper only tests may use to combine shares. */
export * from '../../../../src/engine/crypto/threshold/index.js';
export { lagrangeAtZero as lagrangeAtZeroForTests } from '../../../../src/engine/crypto/threshold/suites.js';
