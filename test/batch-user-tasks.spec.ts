import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { UserCodeConflictError } from '../apps/batch/src/user-tasks/user-code';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, postJson, range, startTestBatch, waitForState } from './support/batch-harness';

/** The operator's folder: tasks and reducers written as users write them (imports from @tandem/sdk). */
const USER_FILES: Record<string, string> = {
  '_split.ts': `export const words = (s: string): string[] => s.split(/\\s+/).filter(Boolean);`,
  'wordcount.ts': `
    import { defineTask, InputError } from '@tandem/sdk';
    import { words } from './_split';
    export default defineTask<string, { words: number; longest: string }>({
      validateItem(item) {
        if (typeof item !== 'string') throw new InputError('must be a string');
        return item.trim() === '' ? 'must not be empty' : null;
      },
      run: (docs) => docs.map((d) => {
        const w = words(d);
        return { words: w.length, longest: w.reduce((a, b) => (b.length > a.length || (b.length === a.length && b < a) ? b : a), '') };
      }),
    });`,
  // Associative: longest word, ties broken alphabetically, so the chunk order never matters.
  'wordcount.reducer.ts': `
    import { defineReducer } from '@tandem/sdk';
    type P = { docs: number; words: number; longest: string };
    const pick = (a: string, b: string) => (b.length > a.length || (b.length === a.length && b < a) ? b : a);
    export default defineReducer<P, { words: number; longest: string }, P>({
      empty: () => ({ docs: 0, words: 0, longest: '' }),
      partial: (outs) => outs.reduce<P>((p, o) => ({ docs: p.docs + 1, words: p.words + o.words, longest: pick(p.longest, o.longest) }), { docs: 0, words: 0, longest: '' }),
      combine: (a, b) => ({ docs: a.docs + b.docs, words: a.words + b.words, longest: pick(a.longest, b.longest) }),
      finalize: (p) => p,
    });`,
  'ctxprobe.ts': `
    import { defineTask } from '@tandem/sdk';
    export default defineTask({
      run(items, ctx) {
        ctx.log.info('probing', { items: items.length });
        return items.map(() => ({ batchId: ctx.batchId, chunk: ctx.chunk, attempt: ctx.attempt, aborted: ctx.signal.aborted, log: typeof ctx.log.warn }));
      },
    });`,
  // Throws on a chunk's first \`failUntil\` attempts (the largest of its items).
  'flaky.ts': `
    import { defineTask } from '@tandem/sdk';
    type Item = { n: number; failUntil?: number };
    export default defineTask<Item, number>({
      validateItem: (x) => (typeof (x as Item)?.n === 'number' ? null : 'must be {"n": number, "failUntil"?: number}'),
      async run(items, ctx) {
        const until = Math.max(0, ...items.map((i) => i.failUntil ?? 0));
        if (ctx.attempt <= until) throw new Error(\`flaky: attempt \${ctx.attempt} of chunk \${ctx.chunk}\`);
        return items.map((i) => i.n * 2);
      },
    });`,
  'broken.ts': `import { defineTask } from '@tandem/sdk'; export default defineTask({ run: (xs) => xs.map((x) => ) });`,
  'broken.reducer.ts': `throw new Error('needs a licence file');`,
  'notask.ts': `import { defineReducer } from '@tandem/sdk'; export default defineReducer({ empty: () => 0, partial: () => 0, combine: () => 0, finalize: () => 0 });`,
};

function userFolder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-batch-user-tasks-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('user tasks and reducers from BATCH_TASKS_DIR (real Postgres + Redis)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let base: string;
  const folders: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const dir = userFolder(USER_FILES);
    folders.push(dir);
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix()), { BATCH_TASKS_DIR: dir, BATCH_CONCURRENCY: '2' }));
    base = app.url;
  });

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    for (const d of folders) rmSync(d, { recursive: true, force: true });
  });

  it('a user task and its user reducer run a batch end to end; the task also feeds a built-in reducer', async () => {
    const docs = [
      'the quick brown fox',
      'jumps over',
      'the lazy dog',
      'a',
      'pack my box with five dozen liquor jugs',
      'sphinx of black quartz',
      'judge my vow',
    ];
    const sub = await postJson(`${base}/v1/batches`, { task: 'wordcount', reducer: 'wordcount', items: docs, chunkSize: 3 });
    expect(sub.status).toBe(201);
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ items: 7, itemsDone: 7, chunks: 3, chunksDone: 3, chunksFailed: 0 });
    expect(done.result).toEqual({ docs: 7, words: 25, longest: 'liquor' });
    const lines = (await (await fetch(`${base}/v1/batches/${done.id}/results`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[4]).toEqual({ index: 4, output: { words: 8, longest: 'liquor' } });

    const counted = await postJson(`${base}/v1/batches`, { task: 'flaky', reducer: 'sum', items: range(10).map((n) => ({ n })), chunkSize: 4 });
    const sum = await waitForState(base, counted.body.id as string, ['succeeded', 'failed']);
    expect(sum.result).toBe('90'); // Σ 2n, n < 10: the built-in sum over a user task's outputs
  });

  it('the task sees its batch, chunk, attempt, abort signal and a logger', async () => {
    const sub = await postJson(`${base}/v1/batches`, { task: 'ctxprobe', reducer: 'concat', items: [0, 1, 2], chunkSize: 2 });
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    const seen = { batchId: done.id, attempt: 1, aborted: false, log: 'function' };
    expect(done.result).toEqual([
      { ...seen, chunk: 0 },
      { ...seen, chunk: 0 },
      { ...seen, chunk: 1 },
    ]);
  });

  it('a throwing task is retried, then its chunk is dead-lettered with the error; the others still count', async () => {
    const items = range(12).map((n) => ({ n, ...(n === 1 ? { failUntil: 1 } : n === 9 ? { failUntil: 1_000 } : {}) }));
    const sub = await postJson(`${base}/v1/batches`, { task: 'flaky', reducer: 'summarize', items, chunkSize: 4, maxAttempts: 3, failurePolicy: 'continue' });
    const done = await waitForState(base, sub.body.id as string, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ chunksDone: 2, chunksFailed: 1, itemsDone: 8, itemsFailed: 4 });
    // Chunk 0 failed once and was counted once; chunk 2 (items 8..11) never succeeded.
    expect(done.result).toEqual({ count: 8, sum: String(2 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7)) });
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const { rows } = await pg.query('SELECT idx, attempts, state FROM batch_chunk WHERE batch_id = $1 ORDER BY idx', [done.id]);
      expect(rows).toEqual([
        { idx: 0, attempts: 2, state: 'done' },
        { idx: 1, attempts: 1, state: 'done' },
        { idx: 2, attempts: 3, state: 'dead' },
      ]);
    } finally {
      await pg.end();
    }
    const errs = (await (await fetch(`${base}/v1/batches/${done.id}/errors`)).json()) as { items: unknown[] };
    expect(errs.items).toEqual([{ chunk: 2, firstItem: 8, lastItem: 11, state: 'dead-letter', attempts: 3, error: 'flaky: attempt 3 of chunk 2' }]);

    const failFast = await postJson(`${base}/v1/batches`, { task: 'flaky', reducer: 'summarize', items: [{ n: 1, failUntil: 9 }], maxAttempts: 2 });
    const failed = await waitForState(base, failFast.body.id as string, ['succeeded', 'failed']);
    expect(failed.state).toBe('failed');
    expect(failed.error).toBe('chunk 0 failed after 2 attempts: flaky: attempt 2 of chunk 0');
  });

  it("validateItem's reason, or what it threw, is the 400 for that item", async () => {
    const empty = await postJson(`${base}/v1/batches`, { task: 'wordcount', reducer: 'count', items: ['ok', '  '] });
    expect(empty).toEqual({ status: 400, body: { error: 'items[1]: must not be empty' } });
    const thrown = await postJson(`${base}/v1/batches`, { task: 'wordcount', reducer: 'count', items: [7] });
    expect(thrown).toEqual({ status: 400, body: { error: 'items[0]: must be a string' } });
  });

  it('a file that failed to load is a 400 with its reason; everything else in the folder loaded', async () => {
    const task = await postJson(`${base}/v1/batches`, { task: 'broken', reducer: 'count', items: [1] });
    expect(task.status).toBe(400);
    expect(task.body.error).toMatch(/^task "broken" failed to load: cannot compile broken\.ts: broken\.ts:1:\d+: Unexpected "\)"$/);
    const reducer = await postJson(`${base}/v1/batches`, { task: 'wordcount', reducer: 'broken', items: ['a'] });
    expect(reducer).toEqual({ status: 400, body: { error: 'reducer "broken" failed to load: broken.reducer.ts: threw while loading: needs a licence file' } });
    const kind = await postJson(`${base}/v1/batches`, { task: 'notask', reducer: 'count', items: [1] });
    expect(kind).toEqual({
      status: 400,
      body: { error: 'task "notask" failed to load: notask.ts: default export is a reducer (defineReducer): name the file <name>.reducer.ts' },
    });
  });

  it('an unknown task or reducer is a 400 naming the known ones', async () => {
    const task = await postJson(`${base}/v1/batches`, { task: 'nope', reducer: 'count', items: [1] });
    // test-probe: the harness enables the failure-injection task; score lives in the project's tasks/, not here.
    expect(task).toEqual({ status: 400, body: { error: 'unknown task "nope" (registered: ctxprobe, flaky, infer, test-probe, wordcount)' } });
    const reducer = await postJson(`${base}/v1/batches`, { task: 'wordcount', reducer: 'nope', items: ['a'] });
    expect(reducer).toEqual({
      status: 400,
      body: { error: 'unknown reducer "nope" (known: summarize, count, sum, min, max, mean, histogram, top-k, concat, wordcount)' },
    });
  });

  it('refuses to start when a user file would shadow a built-in, or BATCH_TASKS_DIR does not exist', async () => {
    const dir = userFolder({ 'count.reducer.ts': USER_FILES['wordcount.reducer.ts']!, 'infer.ts': USER_FILES['flaky.ts']! });
    folders.push(dir);
    const err = await startTestBatch(batchEnv(db.url, prefix, { BATCH_TASKS_DIR: dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserCodeConflictError);
    expect((err as Error).message).toBe(
      'Invalid configuration:\n' +
        '  - BATCH_TASKS_DIR: count.reducer.ts: "count" is a built-in reducer and cannot be replaced; rename the file\n' +
        '  - BATCH_TASKS_DIR: infer.ts: "infer" is a built-in task and cannot be replaced; rename the file',
    );
    await expect(startTestBatch(batchEnv(db.url, prefix, { BATCH_TASKS_DIR: join(dir, 'missing') }))).rejects.toThrow(
      /BATCH_TASKS_DIR: .*missing is not a directory/,
    );
  });
});
