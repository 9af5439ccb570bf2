import { existsSync, statSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { kindOf, type ReducerDefinition, type TaskDefinition } from '@tandem/sdk';
import { compileUserModule, evaluateUserModule, tandemModulePaths, type CompiledModule } from '@tandem/shared';
import type { Reducer } from '../reducers/reducer';
import type { BatchTask } from '../tasks/batch-task';
import { conflictsOf, scanTasksDir, type UserCodeEntry } from './tasks-dir';
import { adaptReducer, adaptTask } from './user-task.adapter';
import { UserCodeConflictError, type UserCode } from './user-code';

export interface LoadUserCodeOptions {
  dir: string;
  /** A missing folder is a boot error (BATCH_TASKS_DIR set explicitly) rather than "no user code". */
  required: boolean;
  /** Names a user file may not take. */
  builtIn: { tasks: readonly string[]; reducers: readonly string[] };
  log: UserCodeLog;
}

/** What loading logs to (a pino logger in the app). */
export interface UserCodeLog {
  info(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const KIND_HINT: Record<string, string> = {
  task: 'a task (defineTask): name the file <name>.ts',
  reducer: 'a reducer (defineReducer): name the file <name>.reducer.ts',
  model: 'a model (defineModel): models belong in the model repository',
};

/** Why `value` is not a usable definition of `kind`, or null. */
function shapeProblem(kind: 'task' | 'reducer', value: unknown): string | null {
  const got = kindOf(value);
  // evaluateUserModule hands back the whole exports object of an ES module without a default.
  const esModuleWithoutDefault = typeof value === 'object' && value !== null && (value as { __esModule?: unknown }).__esModule === true;
  if (value === undefined || esModuleWithoutDefault)
    return `has no default export; end it with \`export default define${kind === 'task' ? 'Task' : 'Reducer'}({...})\``;
  if (got !== kind) {
    const what = got
      ? (KIND_HINT[got] ?? `a "${got}"`)
      : `not made with define${kind === 'task' ? 'Task' : 'Reducer'}() (got ${value === null ? 'null' : typeof value})`;
    return `default export is ${what}`;
  }
  const v = value as Record<string, unknown>;
  const fns = kind === 'task' ? ['run'] : ['empty', 'partial', 'combine', 'finalize'];
  const missing = fns.filter((f) => typeof v[f] !== 'function');
  if (kind === 'task' && v.validateItem !== undefined && typeof v.validateItem !== 'function') missing.push('validateItem');
  return missing.length ? `${missing.join(', ')} must be ${missing.length > 1 ? 'functions' : 'a function'}` : null;
}

/** Error text without the server's paths (it reaches API clients as a 400); esbuild names files relative to the cwd. */
function clean(message: string, dir: string): string {
  const rel = relative(process.cwd(), dir);
  const out = rel ? message.split(`${rel}${sep}`).join('') : message;
  return out.split(`${dir}${sep}`).join('').slice(0, 1000);
}

/** The file's default export, or why it has none that can be used. */
function evaluate(e: UserCodeEntry, compiled: PromiseSettledResult<CompiledModule>, modulePaths: string[]): { value: unknown } | { problem: string } {
  if (compiled.status === 'rejected') return { problem: compiled.reason instanceof Error ? compiled.reason.message : String(compiled.reason) };
  let value: unknown;
  try {
    value = evaluateUserModule(compiled.value, modulePaths);
  } catch (err) {
    return { problem: `${e.base}: threw while loading: ${err instanceof Error ? err.message : String(err)}` };
  }
  const problem = shapeProblem(e.kind, value);
  return problem ? { problem: `${e.base}: ${problem}` } : { value };
}

/**
 * Loads BATCH_TASKS_DIR once at start (API and workers alike: the API validates items with the
 * task, workers run it). An ambiguous folder (a name twice, a built-in shadowed) stops the app
 * with UserCodeConflictError. A file that does not compile, throws while loading or exports the
 * wrong thing is logged and left out: only that name is unavailable (submissions naming it get
 * 400 with the reason), everything else loads.
 */
export async function loadUserCode(opts: LoadUserCodeOptions): Promise<UserCode> {
  const { dir, log } = opts;
  const tasks = new Map<string, BatchTask>();
  const reducers = new Map<string, Reducer>();
  const failedTasks = new Map<string, string>();
  const failedReducers = new Map<string, string>();
  const code: UserCode = { dir, tasks, reducers, failedTasks, failedReducers };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    if (opts.required) throw new UserCodeConflictError([`${dir} is not a directory`]);
    log.info({ dir }, `no user tasks: ${dir} does not exist (built-in tasks only)`);
    return code;
  }
  const scan = scanTasksDir(dir);
  const conflicts = conflictsOf(scan.entries, opts.builtIn);
  if (conflicts.length) throw new UserCodeConflictError(conflicts);
  for (const r of scan.rejected) log.error({ file: r.base }, `user code ${r.base} ignored: ${r.reason}`);

  // Compiled concurrently (esbuild), evaluated one by one in file-name order.
  const modulePaths = tandemModulePaths();
  const compiled = await Promise.allSettled(scan.entries.map((e) => compileUserModule(e.file)));
  scan.entries.forEach((e, i) => {
    const r = evaluate(e, compiled[i]!, modulePaths);
    if ('problem' in r) {
      const why = clean(r.problem, dir);
      (e.kind === 'task' ? failedTasks : failedReducers).set(e.name, why);
      log.error({ file: e.base, kind: e.kind, name: e.name }, `user ${e.kind} "${e.name}" is unavailable: ${why}`);
    } else if (e.kind === 'task') tasks.set(e.name, adaptTask(e.name, r.value as TaskDefinition));
    else reducers.set(e.name, adaptReducer(e.name, r.value as ReducerDefinition));
  });
  log.info(
    {
      dir,
      tasks: [...tasks.keys()],
      reducers: [...reducers.keys()],
      failed: [...failedTasks.keys(), ...[...failedReducers.keys()].map((n) => `${n}.reducer`)],
    },
    `user code from ${dir}: ${tasks.size} task(s), ${reducers.size} reducer(s)${failedTasks.size + failedReducers.size ? `, ${failedTasks.size + failedReducers.size} failed to load` : ''}`,
  );
  return code;
}
