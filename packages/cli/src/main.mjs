// @ts-check
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BatchClient, CliError, ENDED } from './client.mjs';
import { follow, progressLine } from './follow.mjs';

/** @typedef {import('./client.mjs').Batch} Batch */

const DEFAULT_URL = 'http://127.0.0.1:8100';
/** Exit status of `follow`/`run` when the batch ended other than completed (failed, expired, cancelled). */
const NOT_COMPLETED = 3;

/** @param {string} v @param {Record<string, string>} [acc] */
function metadataPair(v, acc = {}) {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('expected key=value');
  return { ...acc, [v.slice(0, i)]: v.slice(i + 1) };
}

/** @param {string} v */
function positiveMs(v) {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return Math.round(n * 1000);
}

/** @param {Command} cmd */
function clientOf(cmd) {
  const o = /** @type {{ url?: string, key?: string }} */ (cmd.optsWithGlobals());
  return new BatchClient(o.url ?? process.env.TANDEM_BATCH_URL ?? DEFAULT_URL, o.key ?? process.env.TANDEM_API_KEY);
}

/** @param {string} s */
const say = (s) => process.stdout.write(`${s}\n`);
/** Progress and notes go to stderr, so stdout carries only what scripts capture (ids, paths). @param {string} s */
const note = (s) => process.stderr.write(`${s}\n`);

/**
 * A path on disk is uploaded first; anything else must be a file id.
 * @param {BatchClient} client @param {string} input
 */
async function inputFileId(client, input) {
  if (existsSync(input)) {
    const f = await client.upload(input);
    note(`uploaded ${input} as ${f.id} (${f.bytes} bytes)`);
    return f.id;
  }
  if (/^file-/.test(input)) return input;
  throw new CliError(`${input}: no such file (give a .jsonl path or a file id, file-…)`);
}

/** @param {BatchClient} client @param {string} input @param {{ model: string, version?: string, window: string, metadata?: Record<string, string> }} o */
async function submit(client, input, o) {
  const fileId = await inputFileId(client, input);
  const endpoint = o.version ? `/v2/models/${o.model}/versions/${o.version}/infer` : `/v2/models/${o.model}/infer`;
  /** @type {Batch} */
  const b = await client.json('POST', '/v1/batches', {
    input_file_id: fileId,
    endpoint,
    completion_window: o.window,
    ...(o.metadata ? { metadata: o.metadata } : {}),
  });
  return b;
}

/** @param {BatchClient} client @param {string} id @param {number} intervalMs */
async function followTo(client, id, intervalMs) {
  const b = await follow(client, id, { intervalMs, tty: process.stdout.isTTY === true, out: process.stdout });
  if (b.status !== 'completed') process.exitCode = NOT_COMPLETED;
  return b;
}

/** @param {BatchClient} client @param {string} id @param {string} dir */
async function download(client, id, dir) {
  const b = await client.batch(id);
  const files = /** @type {[string, string | null][]} */ ([
    ['output', b.output_file_id],
    ['error', b.error_file_id],
  ]).filter((f) => f[1] !== null);
  if (files.length === 0) {
    const why = ENDED.has(b.status)
      ? 'it has no output or error file (none was written, or they expired or were deleted)'
      : `it is still ${b.status}; try after \`tandem follow ${id}\``;
    throw new CliError(`batch ${id}: nothing to download: ${why}`);
  }
  await mkdir(dir, { recursive: true });
  for (const [what, fileId] of files) {
    const dest = join(dir, `${b.id}_${what}.jsonl`);
    const bytes = await client.download(/** @type {string} */ (fileId), dest);
    note(`${what}: ${bytes} bytes`);
    say(dest);
  }
}

/** @param {Batch} b */
function lsRow(b) {
  const c = b.request_counts;
  const what = b.endpoint ?? `task ${b.metadata?.task ?? '?'}`;
  return [
    b.id,
    b.status.padEnd(11),
    `${c.completed}/${c.failed}/${c.total}`.padEnd(16),
    new Date(b.created_at * 1000).toISOString().slice(0, 19).replace('T', ' '),
    what,
  ].join('  ');
}

/** @param {string[]} argv */
export async function main(argv) {
  const program = new Command('tandem')
    .description('Tandem file batches from the command line: upload JSONL, submit, follow, download.')
    .addOption(new Option('--url <url>', `batch API base URL (default ${DEFAULT_URL})`).env('TANDEM_BATCH_URL'))
    .addOption(new Option('--key <key>', 'API key with the batch scope').env('TANDEM_API_KEY'))
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });

  program
    .command('upload <file>')
    .description('upload a JSONL file of requests (purpose=batch); prints the file id')
    .action(async (file, _o, cmd) => {
      say((await clientOf(cmd).upload(file)).id);
    });

  const submitOptions = (/** @type {Command} */ c) =>
    c
      .requiredOption('-m, --model <model>', 'repository model every line calls (the endpoint /v2/models/<model>/infer)')
      .option('--model-version <version>', 'a model version (…/versions/<v>/infer)')
      .option('-w, --window <duration>', 'completion window: 24h, or <n>s, <n>m, <n>h up to 168h', '24h')
      .option('--metadata <key=value>', 'metadata kept on the batch (repeatable)', metadataPair);

  submitOptions(program.command('submit <input>').description('create a batch over a JSONL path (uploaded first) or a file id; prints the batch id')).action(
    async (input, o, cmd) => {
      const b = await submit(clientOf(cmd), input, { model: o.model, version: o.modelVersion, window: o.window, metadata: o.metadata });
      say(b.id);
    },
  );

  program
    .command('follow <batch-id>')
    .description('show progress until the batch ends (a bar on a terminal, a line per change otherwise); exit 3 unless it completed')
    .option('--interval <seconds>', 'poll interval', positiveMs, 1000)
    .action(async (id, o, cmd) => {
      await followTo(clientOf(cmd), id, o.interval);
    });

  program
    .command('download <batch-id>')
    .description('stream the output and error files to <dir>/<batch-id>_{output,error}.jsonl; prints the paths')
    .option('-o, --out <dir>', 'directory', '.')
    .action(async (id, o, cmd) => download(clientOf(cmd), id, resolve(o.out)));

  program
    .command('cancel <batch-id>')
    .description('cancel a batch (answered lines are kept in its output file)')
    .action(async (id, _o, cmd) => {
      /** @type {Batch} */
      const b = await clientOf(cmd).json('POST', `/v1/batches/${encodeURIComponent(id)}/cancel`);
      say(`${b.id} ${b.status}`);
    });

  program
    .command('ls')
    .description('recent batches, newest first: id, status, completed/failed/total, created (UTC), endpoint')
    .option(
      '-n, --limit <n>',
      'how many',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 500) throw new InvalidArgumentError('expected 1 to 500');
        return n;
      },
      20,
    )
    .option('--json', 'the API objects, one JSON line each')
    .action(async (o, cmd) => {
      /** @type {{ data: Batch[] }} */
      const page = await clientOf(cmd).json('GET', `/v1/batches?limit=${o.limit}`);
      for (const b of page.data) say(o.json ? JSON.stringify(b) : lsRow(b));
    });

  submitOptions(program.command('run <file>').description('submit, follow and download: the whole round trip for one JSONL file'))
    .requiredOption('-o, --out <dir>', 'directory for the output and error files')
    .option('--interval <seconds>', 'poll interval', positiveMs, 1000)
    .action(async (file, o, cmd) => {
      const client = clientOf(cmd);
      const b = await submit(client, file, { model: o.model, version: o.modelVersion, window: o.window, metadata: o.metadata });
      note(`batch ${b.id}`);
      const end = await followTo(client, b.id, o.interval);
      if (!process.stdout.isTTY) note(progressLine(end));
      await download(client, b.id, resolve(o.out));
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`tandem: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    // A bug, not an expected failure: the stack helps (TANDEM_DEBUG is not needed for it).
    throw e;
  }
}
