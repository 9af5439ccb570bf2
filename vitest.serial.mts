import { defineConfig } from 'vitest/config';
import base from './vitest.config.mts';

// Tests that compare latencies or hold a control loop steady under real load: one file at a time,
// after the parallel run (npm test), so no other test file loads the two cores while they measure.
export default defineConfig({
  ...base,
  test: { ...base.test, include: ['test/**/*.serial.*.spec.ts'], exclude: ['**/node_modules/**'], fileParallelism: false, maxWorkers: 1 },
});
