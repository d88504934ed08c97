// Lint rules that catch what the type checker does not: floating promises, misused async, unsafe any.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // What .gitignore keeps out of the repo (scratch files included) is not linted either.
  { ignores: ['node_modules/', 'dist/', '.tools/', 'coverage/', '.tmp/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe() and it() return promises that the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Stores implement a Promise interface with code that need not await; async keeps throws as rejections.
      '@typescript-eslint/require-await': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Ids, lock keys and secrets come from node:crypto: defends against predictable session ids.
    files: ['src/core/**/*.ts', 'src/store/**/*.ts', 'src/server/auth.ts', 'src/web/signing.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Use node:crypto (randomBytes, randomInt).',
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
