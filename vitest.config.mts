import { resolve } from 'node:path';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const lib = (name: string): string => resolve(import.meta.dirname, 'libs', name, 'src');

export default defineConfig({
  // SWC, not esbuild: Nest's DI needs emitDecoratorMetadata.
  plugins: [swc.vite({ module: { type: 'es6' } })],
  resolve: {
    alias: {
      '@tandem/shared': lib('shared'),
      '@tandem/persistence': lib('persistence'),
      '@tandem/queue': lib('queue'),
      '@tandem/inference': lib('inference'),
      '@tandem/scheduler': lib('scheduler'),
      '@tandem/auth': lib('auth'),
      '@tandem/sdk': lib('sdk'),
    },
  },
  test: {
    include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'test/**/*.spec.ts', 'scripts/**/*.spec.ts', 'bench/**/*.spec.ts'],
    // Latency comparisons run alone afterwards (vitest.serial.mts).
    exclude: ['**/node_modules/**', 'test/**/*.serial.*.spec.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file gets its own database, so files run in parallel; 2 cores here.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
