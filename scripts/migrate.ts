import { z } from 'zod';
import { env, parseEnv, withSecretFiles } from '@tandem/shared';
import { runMigrations } from '@tandem/persistence';

/** One-shot migration step (docker-compose's `migrate` service; `npm start` migrates itself). */
async function main(): Promise<void> {
  const cfg = parseEnv(
    z.object({ DATABASE_URL: env.postgresUrl().default('postgres://postgres@127.0.0.1:5432/tandem') }),
    withSecretFiles(process.env, ['DATABASE_URL']),
  );
  const ran = await runMigrations(cfg.DATABASE_URL);
  process.stdout.write(ran.length ? `applied: ${ran.join(', ')}\n` : 'up to date\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`migrate: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
