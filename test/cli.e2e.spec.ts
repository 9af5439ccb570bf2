import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '@tandem/auth';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { slowModelEnv, writeSlowModel } from './support/file-batches-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';

/** The linked bin, as `npx tandem` runs it (node_modules/.bin/tandem → packages/cli/bin/tandem.mjs). */
const BIN = resolve('node_modules/.bin/tandem');
const ADMIN_KEY = 'cli-e2e-admin-key-0123456789abcdef';
const line = (i: number, model = 'scorer'): string =>
  JSON.stringify({
    custom_id: `r${i}`,
    method: 'POST',
    url: `/v2/models/${model}/infer`,
    body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [i / 10] }] },
  });

/** A port nothing listens on (bound, then closed). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the tandem CLI against a real batch app (child processes, auth on)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let repo: TempRepo;
  let dir = '';
  let key = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: {} } });
    writeSlowModel(repo.dir);
    app = await startTestBatch(batchEnv(db.url, prefix, slowModelEnv(ADMIN_KEY, repo.dir)));
    key = (await app.app.get(ApiKeyService).create('cli', ['batch'], 'test')).key;
    dir = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
  }, 120_000);

  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    repo?.remove();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  /** Runs the CLI with stdout piped (not a TTY: the line-per-update output). */
  const tandem = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
    new Promise((done) => {
      execFile(BIN, args, { env: { ...process.env, TANDEM_BATCH_URL: app.url, TANDEM_API_KEY: key, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
  const content = async (fileId: string): Promise<string> =>
    (await fetch(`${app.url}/v1/files/${fileId}/content`, { headers: { authorization: `Bearer ${key}` } })).text();

  it('upload, submit with metadata, follow (line per update), download: the files are what the API serves', async () => {
    const input = join(dir, 'requests.jsonl');
    writeFileSync(input, [...Array.from({ length: 12 }, (_, i) => line(i)), line(12, 'nope')].join('\n') + '\n');
    const up = await tandem(['upload', input]);
    expect(up).toMatchObject({ code: 0, stderr: '' });
    const fileId = up.stdout.trim();
    expect(fileId).toMatch(/^file-/);

    const sub = await tandem(['submit', fileId, '--model', 'scorer', '--metadata', 'team=search', '--metadata', 'run=7']);
    expect(sub.code).toBe(0);
    const id = sub.stdout.trim();
    expect(id).toMatch(/^batch_[0-9a-f]{32}$/);

    const fol = await tandem(['follow', id, '--interval', '0.1']);
    expect(fol.code).toBe(0);
    const updates = fol.stdout
      .trim()
      .split('\n')
      .map((l) =>
        Object.fromEntries(
          l
            .split(' ')
            .slice(1)
            .map((kv) => kv.split('=') as [string, string]),
        ),
      );
    expect(
      fol.stdout
        .trim()
        .split('\n')
        .every((l) => l.startsWith(`${id} status=`)),
    ).toBe(true);
    expect(updates.at(-1)).toMatchObject({ status: 'completed', done: '13/13', completed: '12', failed: '1', progress: '100%' });

    const batch = (await (await fetch(`${app.url}/v1/batches/${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as Record<string, unknown>;
    expect(batch.metadata).toEqual({ team: 'search', run: '7' });
    const out = join(dir, 'out');
    const dl = await tandem(['download', id, '--out', out]);
    expect(dl.code).toBe(0);
    expect(dl.stdout.trim().split('\n')).toEqual([join(out, `${id}_output.jsonl`), join(out, `${id}_error.jsonl`)]);
    expect(readFileSync(join(out, `${id}_output.jsonl`), 'utf8')).toBe(await content(batch.output_file_id as string));
    expect(readFileSync(join(out, `${id}_error.jsonl`), 'utf8')).toBe(await content(batch.error_file_id as string));
    expect(
      readFileSync(join(out, `${id}_output.jsonl`), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(12);
    expect(readdirSync(out).filter((f) => f.endsWith('.part'))).toEqual([]);

    const ls = await tandem(['ls', '--limit', '5']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain(`${id}  completed`);
  });

  it('run = submit + follow + download from a path', async () => {
    const input = join(dir, 'run.jsonl');
    writeFileSync(input, Array.from({ length: 5 }, (_, i) => line(i)).join('\n') + '\n');
    const out = join(dir, 'run-out');
    const r = await tandem(['run', input, '--model', 'scorer', '--out', out, '--interval', '0.1']);
    expect(r.code).toBe(0);
    const [path] = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.endsWith('_output.jsonl'));
    const lines = readFileSync(path!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number } });
    expect(lines.map((l) => [l.custom_id, l.response.status_code])).toEqual(Array.from({ length: 5 }, (_, i) => [`r${i}`, 200]));
    expect(r.stderr).toMatch(/uploaded .*run\.jsonl as file-/);
  });

  it('cancel: the batch ends cancelled, follow exits 3', async () => {
    const input = join(dir, 'slow.jsonl');
    writeFileSync(input, Array.from({ length: 40 }, (_, i) => line(i, 'slow')).join('\n') + '\n');
    const sub = await tandem(['submit', input, '-m', 'slow', '--window', '1h']);
    expect(sub.code).toBe(0);
    const id = sub.stdout.trim();
    const c = await tandem(['cancel', id]);
    expect(c.code).toBe(0);
    expect(c.stdout.trim()).toMatch(new RegExp(`^${id} (cancelling|cancelled)$`));
    const fol = await tandem(['follow', id, '--interval', '0.1']);
    expect(fol.code).toBe(3);
    expect(fol.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^${id} status=cancelled `));
  });

  it('expected failures: the server message on stderr, exit 1, no stack', async () => {
    const direct = await fetch(`${app.url}/v1/batches`, { headers: { authorization: 'Bearer not-a-real-key-0123456789' } });
    const serverMessage = ((await direct.json()) as { error: string }).error;
    const bad = await tandem(['ls'], { TANDEM_API_KEY: 'not-a-real-key-0123456789' });
    expect(bad).toEqual({ code: 1, stdout: '', stderr: `tandem: ${direct.status}: ${serverMessage}\n` });

    const missing = await tandem(['follow', 'batch_0123456789abcdef0123456789abcdef']);
    expect(missing).toMatchObject({ code: 1, stderr: 'tandem: 404: batch batch_0123456789abcdef0123456789abcdef not found\n' });
    const unknownModel = await tandem(['submit', join(dir, 'run.jsonl'), '--model', 'nope']);
    expect(unknownModel.code).toBe(1);
    expect(unknownModel.stderr).toMatch(/tandem: 404: unknown model 'nope'\n$/);
    const port = await freePort();
    const down = await tandem(['ls'], { TANDEM_BATCH_URL: `http://127.0.0.1:${port}` });
    expect(down).toMatchObject({
      code: 1,
      stderr: `tandem: cannot reach the batch API at http://127.0.0.1:${port} (ECONNREFUSED); set --url or TANDEM_BATCH_URL\n`,
    });
    for (const r of [bad, missing, unknownModel, down]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
