// @ts-check
// A small rule set on purpose (issue 19): the checks that catch real defects here (floating
// promises, unused code) and the import boundaries; formatting is prettier's job, not eslint's.
import tseslint from 'typescript-eslint';

const libInternals = {
  group: ['@tandem/*/*', '**/libs/*/src/**'],
  message: "Import a library through its index ('@tandem/<lib>'), not its internals.",
};
const apps = {
  group: ['**/apps/**', '@tandem/gateway*', '@tandem/batch*'],
  message: 'Libraries never import apps: move the shared piece into a library.',
};

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'packages/cli/dist/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
      'apps/gateway/src/admin-panel/static/**',
      'vitest.serial.mts',
    ],
  },
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.mts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Tests may poke at loosely typed JSON; the rule guards exported and production types.
    files: ['test/**/*.ts', '**/*.spec.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['libs/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [apps, libInternals] }] },
  },
  {
    files: ['apps/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [libInternals] }] },
  },
);
