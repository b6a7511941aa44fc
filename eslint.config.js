import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'bin/**', '.bench/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      // Fastify handlers are async so that a throw becomes a mapped error response.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['src/engines/**', 'src/storage/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/http/**', '**/resp/**', '**/cluster/**', '**/server/**', '**/services/**'] },
      ],
    },
  },
  {
    files: ['src/services/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/http/**', '**/resp/**', '**/cluster/**', '**/server/**'] },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'AbortSignal',
          property: 'any',
          message:
            'On Node 20 its signals stay referenced from their sources while those live: use linkedSignal (services/linked-signal.ts).',
        },
      ],
    },
  },
  {
    files: ['test/**', 'bench/**', 'src/**/*.test.ts', 'src/cli/**'],
    rules: { 'no-console': 'off' },
  },
);
