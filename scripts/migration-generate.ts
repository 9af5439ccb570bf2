import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * `npm run migration:generate -- <kebab-name>`: diff the entities against the database in
 * DATABASE_URL (TypeORM's generator), write migrations/<timestamp>-<name>.ts and register it in
 * migrations/index.ts. Review the SQL before committing.
 */
const root = resolve(__dirname, '..', '..');
const name = process.argv[2];
if (!name || !/^[a-z][a-z0-9-]{1,60}$/.test(name)) {
  process.stderr.write('usage: npm run migration:generate -- <kebab-case-name>\n');
  process.exit(2);
}
const dir = resolve(root, 'migrations');
const before = new Set(readdirSync(dir));
try {
  execFileSync(
    resolve(root, 'node_modules/.bin/typeorm'),
    ['migration:generate', '-p', '-d', resolve(root, 'dist/libs/persistence/src/data-source.js'), resolve(dir, name)],
    { stdio: 'inherit', cwd: root },
  );
} catch {
  process.exit(1);
}
const created = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.ts'));
if (!created) process.exit(0);
const source = readFileSync(resolve(dir, created), 'utf8');
const cls = /export class (\w+)/.exec(source)?.[1];
if (!cls) throw new Error(`no class found in ${created}`);
const indexPath = resolve(dir, 'index.ts');
let index = readFileSync(indexPath, 'utf8');
index = `import { ${cls} } from './${created.replace(/\.ts$/, '')}';\n${index}`;
index = index.replace(
  /export const MIGRATIONS = \[([\s\S]*?)\];/,
  (_m, list: string) => `export const MIGRATIONS = [${list.trim().replace(/,$/, '')}, ${cls}];`,
);
writeFileSync(indexPath, index);
process.stdout.write(`registered ${cls} in migrations/index.ts\n`);
