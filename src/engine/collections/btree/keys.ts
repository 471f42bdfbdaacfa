/** A tree key: a finite number or a string. */
export type TreeKeyValue = string | number;

/**
 * Total order on tree keys: every number sorts before every string; numbers compare numerically and
 * strings by UTF-16 code unit (what `<` does on strings, independent of locale).
 */
export function compareKeys(a: TreeKeyValue, b: TreeKeyValue): number {
  if (typeof a === 'number') {
    if (typeof b !== 'number') return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
