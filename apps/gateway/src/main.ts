import 'reflect-metadata';
import { ConfigValidationError, fixHeapGrowth, installGracefulShutdown } from '@tandem/shared';
import { startGateway } from './bootstrap';
import { loadGatewayConfig, type GatewayConfig } from './config/gateway.config';

function config(): GatewayConfig {
  try {
    return loadGatewayConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigValidationError) {
      process.stderr.write(`gateway: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

const cfg = config();
// Before the first request: V8's dynamic heap growth can lock a busy gateway into back-to-back major GCs.
fixHeapGrowth();
startGateway(cfg).then(
  ({ app, logger }) => installGracefulShutdown(app, logger, { graceMs: cfg.shutdownGraceMs, drainDelayMs: cfg.shutdownDrainDelayMs }),
  (e: unknown) => {
    process.stderr.write(`gateway: failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
