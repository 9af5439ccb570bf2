import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigValidationError } from '@tandem/shared';
import type { TaskContext } from '../tasks/batch-task';
import { loadUserCode, type UserCodeLog } from './user-code.loader';
import { UserCodeConflictError } from './user-code';
import { adaptReducer, adaptTask, sdkLogger } from './user-task.adapter';

const BUILT_IN = { tasks: ['infer', 'test-probe'], reducers: ['summarize', 'sum', 'count'] };
const dirs: string[] = [];

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-user-tasks-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function recorder(): UserCodeLog & { errors: string[] } {
  const errors: string[] = [];
  return { errors, info: () => undefined, error: (_f, msg) => errors.push(msg) };
}

const load = (dir: string, log: UserCodeLog = recorder(), required = true) => loadUserCode({ dir, required, builtIn: BUILT_IN, log });

const ctx = (over: Partial<TaskContext> = {}): TaskContext => ({
  batchId: 'b',
  chunk: 3,
  attempt: 2,
  signal: new AbortController().signal,
  model: null,
  priority: 50,
  mayBorrow: true,
  log: { debug() {}, info() {}, warn() {}, error() {} },
  ...over,
});

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const WC_TASK = `
import { defineTask, InputError } from '@tandem/sdk';
import { words } from './_words';
export default defineTask<string, number>({
  validateItem(item) {
    if (typeof item !== 'string') throw new InputError('must be a string');
    return item.length > 20 ? 'too long' : null;
  },
  run: (items, ctx) => items.map((s) => words(s).length + ctx.attempt * 0),
});`;

const MAXLEN_REDUCER = `
import { defineReducer } from '@tandem/sdk';
export default defineReducer<number, number, { longest: number }>({
  empty: () => 0,
  partial: (xs) => Math.max(0, ...xs),
  combine: (a, b) => Math.max(a, b),
  finalize: (p) => ({ longest: p }),
});`;

describe('loadUserCode', () => {
  it('loads <name>.ts as a task and <name>.reducer.ts as a reducer; helpers, specs, folders and other files are skipped', async () => {
    const dir = folder({
      'wc.ts': WC_TASK,
      '_words.ts': `export const words = (s: string): string[] => s.split(/\\s+/).filter(Boolean);`,
      'wc.reducer.ts': MAXLEN_REDUCER,
      'plain.js': `const { defineTask } = require('@tandem/sdk'); module.exports = defineTask({ run: (xs) => xs.map((x) => x + 1) });`,
      'esm.mjs': `import { defineTask } from '@tandem/sdk'; export default defineTask({ run: (xs) => xs });`,
      'wc.spec.ts': `throw new Error('not user code');`,
      'types.d.ts': `export {};`,
      'README.md': '# not code',
      'lib/inner.ts': `throw new Error('not loaded');`,
    });
    const log = recorder();
    const code = await load(dir, log);
    expect(log.errors).toEqual([]);
    expect([...code.tasks.keys()]).toEqual(['esm', 'plain', 'wc']);
    expect([...code.reducers.keys()]).toEqual(['wc']);
    const wc = code.tasks.get('wc')!;
    expect(wc.name).toBe('wc');
    expect(wc.validateItem('a b', null)).toBeNull();
    expect(wc.validateItem('x'.repeat(21), null)).toBe('too long');
    expect(wc.validateItem(7, null)).toBe('must be a string'); // an InputError thrown by validateItem
    expect(await wc.run(['one two', '', 'a b c'], ctx())).toEqual([2, 0, 3]);
    expect(await code.tasks.get('plain')!.run([1, 2], ctx())).toEqual([2, 3]);
    const r = code.reducers.get('wc')!;
    expect(r.finalize(r.combine(r.partial([2, 9]), r.partial([4])))).toEqual({ longest: 9 });
  });

  it('a file that does not compile, throws at load or exports the wrong thing is unavailable with its reason; the rest load', async () => {
    const dir = folder({
      'good.ts': `import { defineTask } from '@tandem/sdk'; export default defineTask({ run: (xs) => xs });`,
      'syntax.ts': `export default defineTask({ run: (xs) => xs.map((x) => ) });`,
      'throws.ts': `throw new Error('no licence file');`,
      'reducerish.ts': MAXLEN_REDUCER,
      'bare.ts': `export default { run: (xs: unknown[]) => xs };`,
      'nodefault.ts': `export const x = 1;`,
      'norun.ts': `import { defineTask } from '@tandem/sdk'; export default defineTask({ run: 5 } as never);`,
      'taskish.reducer.ts': `import { defineTask } from '@tandem/sdk'; export default defineTask({ run: (xs) => xs });`,
      'missing-dep.ts': `import 'tandem-no-such-package'; export default 1;`,
      'my task.ts': `export default 1;`,
    });
    const log = recorder();
    const code = await load(dir, log);
    expect([...code.tasks.keys()]).toEqual(['good']);
    const why = Object.fromEntries(code.failedTasks);
    expect(why.syntax).toMatch(/^cannot compile syntax\.ts: syntax\.ts:1:\d+: /);
    expect(why.throws).toBe('throws.ts: threw while loading: no licence file');
    expect(why.reducerish).toBe('reducerish.ts: default export is a reducer (defineReducer): name the file <name>.reducer.ts');
    expect(why.bare).toBe('bare.ts: default export is not made with defineTask() (got object)');
    expect(why.nodefault).toBe('nodefault.ts: has no default export; end it with `export default defineTask({...})`');
    expect(why.norun).toBe('norun.ts: run must be a function');
    expect(why['missing-dep']).toMatch(/^missing-dep\.ts: threw while loading: Cannot find module 'tandem-no-such-package'/);
    expect(Object.fromEntries(code.failedReducers)).toEqual({ taskish: 'taskish.reducer.ts: default export is a task (defineTask): name the file <name>.ts' });
    // No absolute server paths in what reaches API clients.
    for (const w of [...code.failedTasks.values(), ...code.failedReducers.values()]) expect(w).not.toContain(dir);
    expect(log.errors.length).toBe(9); // 8 unavailable + 1 badly named
    expect(log.errors.find((e) => e.includes('my task.ts'))).toMatch(/not a valid name/);
  });

  it('refuses to load an ambiguous folder: a built-in shadowed, or one name defined twice', async () => {
    const dir = folder({
      'sum.reducer.ts': MAXLEN_REDUCER,
      'infer.ts': WC_TASK,
      'dup.ts': WC_TASK,
      'dup.js': `module.exports = 1;`,
      'fine.ts': WC_TASK,
    });
    const err = await load(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserCodeConflictError);
    expect(err).toBeInstanceOf(ConfigValidationError); // main.ts exits 2 on these: not restarted
    const problems = (err as UserCodeConflictError).problems;
    expect(problems).toEqual([
      'BATCH_TASKS_DIR: dup.js and dup.ts both define the task "dup"; keep one',
      'BATCH_TASKS_DIR: infer.ts: "infer" is a built-in task and cannot be replaced; rename the file',
      'BATCH_TASKS_DIR: sum.reducer.ts: "sum" is a built-in reducer and cannot be replaced; rename the file',
    ]);
  });

  it('a missing folder means no user code, unless BATCH_TASKS_DIR named it', async () => {
    const missing = join(tmpdir(), 'tandem-no-such-tasks-dir');
    const code = await load(missing, recorder(), false);
    expect(code.tasks.size + code.reducers.size + code.failedTasks.size).toBe(0);
    await expect(load(missing, recorder(), true)).rejects.toThrow(/BATCH_TASKS_DIR: .*tandem-no-such-tasks-dir is not a directory/);
  });
});

describe('user task and reducer adapters', () => {
  it('validateItem: null/undefined is valid, a string is the reason, a throw is the message, anything else is explained', () => {
    const t = (validateItem: (item: unknown) => unknown) => adaptTask('t', { validateItem: validateItem as never, run: (xs) => [...xs] });
    expect(t(() => undefined).validateItem(1, null)).toBeNull();
    expect(t(() => '').validateItem(1, null)).toBe('invalid item');
    expect(
      t(() => {
        throw new RangeError('out of range');
      }).validateItem(1, null),
    ).toBe('out of range');
    expect(t(async () => null).validateItem(1, null)).toMatch(/must be synchronous/);
    expect(t(() => false).validateItem(1, null)).toBe('task t: validateItem returned boolean; expected a reason string or null');
    expect(adaptTask('n', { run: (xs) => [...xs] }).validateItem({ any: 1 }, null)).toBeNull();
  });

  it('run gets the SDK context; outputs must be an array that JSON can store', async () => {
    let seen: Record<string, unknown> = {};
    const ac = new AbortController();
    const t = adaptTask('t', { run: (xs, c) => ((seen = { ...c }), xs.map(() => 1)) });
    await t.run([0], ctx({ signal: ac.signal }));
    expect(Object.keys(seen).sort()).toEqual(['attempt', 'batchId', 'chunk', 'log', 'signal']);
    expect(seen).toMatchObject({ batchId: 'b', chunk: 3, attempt: 2, signal: ac.signal });
    await expect(adaptTask('x', { run: () => 'nope' as never }).run([1], ctx())).rejects.toThrow('task x returned string, not an array of outputs');
    await expect(adaptTask('x', { run: () => [10n] }).run([1], ctx())).rejects.toThrow(/task x's outputs cannot be stored as JSON: .*BigInt/);
  });

  it('reducer partials and results must be synchronous JSON', () => {
    const r = adaptReducer('r', { empty: () => 0n, partial: () => 1n, combine: (a: bigint, b: bigint) => a + b, finalize: (p) => p });
    expect(() => r.partial([1])).toThrow(/reducer r's partial cannot be stored as JSON/);
    expect(() => r.finalize(3n)).toThrow(/reducer r's result cannot be stored as JSON/);
    const a = adaptReducer('a', { empty: () => 0, partial: async () => 1, combine: (x) => x, finalize: (p) => p });
    expect(() => a.partial([1])).toThrow('reducer a: partial must be synchronous (it returned a Promise)');
  });

  it('the task logger is pino underneath: fields first, message second, child made on first use', () => {
    const calls: unknown[][] = [];
    let children = 0;
    const child = { info: (...a: unknown[]) => calls.push(['info', ...a]), warn: (...a: unknown[]) => calls.push(['warn', ...a]) };
    const parent = { child: (b: unknown) => (children++, calls.push(['child', b]), child) };
    const log = sdkLogger(parent as never, { batch: 'b', chunk: 1 });
    expect(children).toBe(0);
    log.info('started', { items: 3 });
    log.warn('slow');
    expect(children).toBe(1);
    expect(calls).toEqual([
      ['child', { batch: 'b', chunk: 1 }],
      ['info', { items: 3 }, 'started'],
      ['warn', 'slow'],
    ]);
  });
});
