import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from './data-source.options';

/**
 * Applies pending migrations (each in its own transaction). Start-up, tests and the CLI all go
 * through here. Concurrent starters are serialized by an advisory lock, so two processes
 * booting against one database never race on the same migration.
 */
export async function runMigrations(url: string): Promise<string[]> {
  const ds = new DataSource(buildDataSourceOptions({ url, poolSize: 2, applicationName: 'tandem-migrate' }));
  await ds.initialize();
  try {
    const runner = ds.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SELECT pg_advisory_lock(7262010)');
      const ran = await ds.runMigrations({ transaction: 'each' });
      return ran.map((m) => m.name);
    } finally {
      await runner.query('SELECT pg_advisory_unlock(7262010)').catch(() => undefined);
      await runner.release();
    }
  } finally {
    await ds.destroy();
  }
}
