import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type UserCodeKind = 'task' | 'reducer';

/** One loadable file of the tasks folder. */
export interface UserCodeEntry {
  kind: UserCodeKind;
  name: string;
  /** Absolute path. */
  file: string;
  /** The file name, for messages (absolute paths stay out of API answers). */
  base: string;
}

export interface TasksDirScan {
  entries: UserCodeEntry[];
  /** Files that look like user code but cannot be (their name is not a valid task/reducer name). */
  rejected: Array<{ base: string; reason: string }>;
}

/** Same bound as the submission's `task`/`reducer` fields. */
export const USER_CODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
const SOURCE = /^(.+?)(\.reducer)?\.(ts|js|mjs)$/;

/**
 * Reads the folder's top level: `<name>.ts|.js|.mjs` is a task, `<name>.reducer.ts|.js|.mjs` a
 * reducer. Skipped without a word, so helpers and tests can live beside the tasks: folders,
 * names starting with `.` or `_`, `*.d.ts`, `*.spec.*`, `*.test.*` and other extensions.
 * Sorted by file name, so loading order (and the log) is the same on every host.
 */
export function scanTasksDir(dir: string): TasksDirScan {
  const entries: UserCodeEntry[] = [];
  const rejected: TasksDirScan['rejected'] = [];
  for (const base of readdirSync(dir).sort()) {
    if (base.startsWith('.') || base.startsWith('_') || base.endsWith('.d.ts') || /\.(spec|test)\.[cm]?[jt]s$/.test(base)) continue;
    const m = SOURCE.exec(base);
    if (!m) continue;
    const file = join(dir, base);
    if (!statSync(file, { throwIfNoEntry: false })?.isFile()) continue; // follows links; folders hold helpers
    const name = m[1]!;
    if (!USER_CODE_NAME.test(name)) {
      rejected.push({ base, reason: `"${name}" is not a valid name (letters, digits, "-" and "_", at most 100)` });
      continue;
    }
    entries.push({ kind: m[2] ? 'reducer' : 'task', name, file, base });
  }
  return { entries, rejected };
}

/** Names used by two files, or shadowing a built-in: the folder is ambiguous and must not load. */
export function conflictsOf(entries: readonly UserCodeEntry[], builtIn: { tasks: readonly string[]; reducers: readonly string[] }): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const e of entries) {
    const key = `${e.kind}:${e.name}`;
    const first = seen.get(key);
    if (first) problems.push(`${first} and ${e.base} both define the ${e.kind} "${e.name}"; keep one`);
    else seen.set(key, e.base);
    const reserved = e.kind === 'task' ? builtIn.tasks : builtIn.reducers;
    if (reserved.includes(e.name)) problems.push(`${e.base}: "${e.name}" is a built-in ${e.kind} and cannot be replaced; rename the file`);
  }
  return problems;
}
