// First: which threads V8 started before any module ran (libuv's pool starts later, on first use).
import './worker/startup-threads';
import 'reflect-metadata';
import { ConfigValidationError, fixHeapGrowth, installGracefulShutdown } from '@tandem/shared';
import { startBatch } from './bootstrap';
import { loadBatchConfig, type BatchConfig } from './config/batch.config';
import { HELPER_NICE, lowerCpuPriority, lowerHelperThreads, lowerSessionWeight } from './worker/cpu-priority';

function config(): BatchConfig {
  try {
    return loadBatchConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigValidationError) {
      process.stderr.write(`batch: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

const cfg = config();
// The gateway's reason (heap-growth.ts) holds here too: the worker streams megabytes of chunk buffers per second.
fixHeapGrowth();
// Co-location on CPU: the ledger decides how many cores batch computes on; a lower scheduling
// priority makes the kernel favour online work wherever they still overlap (the moments before
// a revoked unit reaches its safe point, and batch's own JSON/Postgres work). Set before any
// worker thread exists (threads inherit it), and on every thread Node already started.
if (cfg.jobs.role !== 'api' && cfg.jobs.cpuNice > 0) {
  try {
    lowerCpuPriority(cfg.jobs.cpuNice);
    // V8's GC and compiler helpers (started with the process) lower still: nice 19.
    lowerHelperThreads();
    // Between sessions the kernel weighs whole sessions (autogroups), not threads: the session
    // this process leads (npm start's) gets the weight its units should have against online.
    const session = lowerSessionWeight(cfg.jobs.unitCpuPolicy === 'idle' ? HELPER_NICE : cfg.jobs.cpuNice);
    if (!session.applied && session.reason.startsWith('autogroup'))
      process.stderr.write(`batch: could not lower the session's CPU weight: ${session.reason}\n`);
  } catch (e) {
    process.stderr.write(`batch: could not lower CPU priority: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}
startBatch(cfg).then(
  ({ app, logger }) => installGracefulShutdown(app, logger, { graceMs: cfg.shutdownGraceMs, drainDelayMs: cfg.shutdownDrainDelayMs }),
  (e: unknown) => {
    // BATCH_TASKS_DIR conflicts are configuration errors: exit 2, which the launcher does not restart.
    if (e instanceof ConfigValidationError) {
      process.stderr.write(`batch: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`batch: failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
