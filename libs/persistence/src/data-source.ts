import { DataSource } from 'typeorm';
import { z } from 'zod';
import { env, parseEnv } from '@tandem/shared';
import { buildDataSourceOptions } from './data-source.options';

/** Standalone DataSource for the TypeORM CLI (`npm run migration:*`). */
const cli = parseEnv(z.object({ DATABASE_URL: env.postgresUrl().default('postgres://postgres@127.0.0.1:5432/tandem') }), process.env);

export default new DataSource(buildDataSourceOptions({ url: cli.DATABASE_URL, poolSize: 2, applicationName: 'tandem-cli' }));
