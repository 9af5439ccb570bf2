import { testQueuePrefix, TEST_REDIS_URL } from './test-env';

/** Env for a gateway on a test database: its own queue prefix, any free ports, quiet, auth off. */
export function gatewayEnv(dbUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: dbUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: testQueuePrefix(),
    LOG_LEVEL: 'silent',
    TANDEM_AUTH: 'off', // auth has its own tests (test/auth.e2e.spec.ts)
    HOST: '127.0.0.1',
    GATEWAY_PORT: '0',
    GATEWAY_GRPC_PORT: '0',
    MODEL_REPOSITORY: 'models',
    ...extra,
  };
}
