// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Engine layers, bottom first. A layer may import only from layers below it (and itself). */
const layers = ['base', 'crypto', 'storage', 'collections', 'transactions', 'consensus', 'matchmaking', 'archive', 'network', 'cluster', 'config', 'node'];

const layerRules = layers.map((layer, index) => ({
  files: [`src/engine/${layer}/**/*.{ts,tsx}`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...(index + 1 < layers.length
            ? [{ group: layers.slice(index + 1).flatMap((above) => [`../${above}/*`, `../../${above}/*`, `../../../${above}/*`]), message: `engine/${layer} may not import from a layer above it` }]
            : []),
          { group: ['**/ui/**', '**/commands/**'], message: 'the engine never imports the UI or commands' },
          { group: ['@oclif/*', 'ink', 'react', 'chalk'], message: 'the engine never imports oclif, Ink, React or chalk' },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', 'scripts/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['src/ui/**/*.{ts,tsx}'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/commands/**'], message: 'ui never imports commands' }] }] },
  },
  ...layerRules,
  {
    files: ['test/**/*.{ts,tsx}', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
);
