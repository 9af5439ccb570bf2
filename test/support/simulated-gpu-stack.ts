import { resolve } from 'node:path';
import { startGateway, type RunningGateway } from '../../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../../apps/gateway/src/config/gateway.config';
import { testQueuePrefix, TEST_REDIS_URL } from './test-env';

/** test/fixtures/fake-nvidia-smi: an 8×H100 node with MIG on GPU 0 (3g.40gb + 2 × 2g.20gb). */
export const FAKE_NVIDIA_SMI_DIR = resolve(process.cwd(), 'test/fixtures/fake-nvidia-smi');

/** Puts the fake nvidia-smi first on this process's PATH (the probe runs `nvidia-smi`); returns the undo. */
export function useFakeNvidiaSmi(): () => void {
  const path = process.env.PATH;
  process.env.PATH = `${FAKE_NVIDIA_SMI_DIR}:${path ?? ''}`;
  return () => {
    process.env.PATH = path;
  };
}

/** Env both apps share on a simulated-GPU node: the ledger's node, online owning every GPU, the simulated CUDA sessions. */
export function simulatedGpuEnv(node: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SCHEDULER_NODE_NAME: node,
    SCHEDULER_DISCOVER_CPU: 'false',
    SCHEDULER_DEFAULT_ONLINE_SHARE: '1',
    SCHEDULER_DEFAULT_BATCH_SHARE: '0',
    TANDEM_SIMULATED_GPU: 'true',
    TANDEM_SIMULATED_GPU_MS_PER_BATCH: '20',
    ...extra,
  };
}

/** An in-process gateway on that node (auth off, ephemeral ports); GPU replicas hold their own allocations, so no online claims. */
export async function startSimulatedGpuGateway(dbUrl: string, repo: string, shared: Record<string, string>): Promise<{ gw: RunningGateway; prefix: string }> {
  const prefix = testQueuePrefix();
  const gw = await startGateway(
    loadGatewayConfig({
      ...shared,
      DATABASE_URL: dbUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'silent',
      TANDEM_AUTH: 'off',
      HOST: '127.0.0.1',
      GATEWAY_PORT: '0',
      GATEWAY_GRPC_PORT: '0',
      MODEL_REPOSITORY: repo,
      HYBRID_ONLINE_CLAIMS: 'false',
      AUTOSCALER_TICK_MS: '50',
    }),
  );
  return { gw, prefix };
}
