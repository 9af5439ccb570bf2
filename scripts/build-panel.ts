import { resolve } from 'node:path';
import { writePanelBundle } from '../apps/gateway/src/admin-panel/panel-bundle';

// `npm run build`, after swc: bundles the admin panel's TypeScript into the built gateway's
// static folder (run from the repository root, where npm runs scripts).
const root = process.cwd();
writePanelBundle(resolve(root, 'dist/apps/gateway/src/admin-panel/static'), resolve(root, 'apps/gateway/src/admin-panel/ui/main.ts')).catch((e: unknown) => {
  console.error('panel bundle failed:', e instanceof Error ? e.message : e);
  process.exit(1);
});
