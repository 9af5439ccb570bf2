import 'reflect-metadata';
import { ConfigValidationError, installGracefulShutdown } from '@tandem/shared';
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
startGateway(cfg).then(
  ({ app, logger }) => installGracefulShutdown(app, logger, { graceMs: cfg.shutdownGraceMs, drainDelayMs: cfg.shutdownDrainDelayMs }),
  (e: unknown) => {
    process.stderr.write(`gateway: failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
