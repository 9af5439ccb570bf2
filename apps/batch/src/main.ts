import 'reflect-metadata';
import { ConfigValidationError, installGracefulShutdown } from '@tandem/shared';
import { startBatch } from './bootstrap';
import { loadBatchConfig, type BatchConfig } from './config/batch.config';

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
startBatch(cfg).then(
  ({ app, logger }) => installGracefulShutdown(app, logger, cfg.shutdownGraceMs),
  (e: unknown) => {
    process.stderr.write(`batch: failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
