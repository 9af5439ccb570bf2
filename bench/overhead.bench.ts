import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp2Server } from 'node:http2';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadPackageDefinition, Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import Fastify from 'fastify';
import { chooseAllocator } from '../scripts/launcher/allocator-env';
import { benchDatabase, freePort, spawnServer } from './support/http-load';
import { cpuSeconds } from './support/proc-stat';
import type { Phase, PhaseResult, Transport } from './overhead-client';
import { median } from './support/stats';

/**
 * `npm run bench:overhead` (issue 20): what the gateway itself costs per request and per MB of
 * tensor, on a null model (identity, a node model), against a plain Fastify / plain grpc-js
 * server echoing the same bytes. Shipped configuration: authentication on (a bench admin key),
 * the launcher's allocator, default logging. Servers and the load client are three processes;
 * the figure is the server's CPU time (/proc utime+stime) over answered requests, not wall time.
 * Environment: BENCH_SECONDS (phase length, default 3), BENCH_ROUNDS (default 3),
 * BENCH_CONCURRENCY (default 16), BENCH_GATEWAY_NODE_ARGS (node flags for the gateway, e.g. --cpu-prof),
 * BENCH_ONLY (a regexp on `server/transport/size`, e.g. `gateway/binary/small`: profile one phase),
 * BENCH_COMPARE_GATEWAY (another build's `dist/apps/gateway/src/main.js`, e.g. a worktree of the
 * commit before a change: served as server `before`, its phases interleaved with the others, so
 * a before/after comparison shares the machine's load of the moment).
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
/** Elements (FP32) per request: a small tensor for the per-request cost, a large one for the per-MB slope. */
const SIZES = { small: 16, large: 65_536 } as const;
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const PROTO_DIR = resolve(__dirname, '..', 'apps', 'gateway', 'src', 'grpc', 'proto');

// ---------- plain baseline servers (child role): the same bytes back, no model ----------
async function plainServers(httpPort: number, grpcPort: number, h2Port: number): Promise<void> {
  h2Floor(h2Port);
  const app = Fastify({ logger: false, bodyLimit: 64 << 20 });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // JSON: parsed and re-serialized as an OIP response (what any JSON API must do with a tensor).
  app.post('/json', async (req) => {
    const inp = (req.body as { inputs: { name: string; datatype: string; shape: number[]; data: number[] }[] }).inputs[0]!;
    return { model_name: 'null', model_version: '1', outputs: [{ name: 'y', datatype: inp.datatype, shape: inp.shape, data: inp.data }] };
  });
  // Binary: the request's bytes back as they came.
  app.post('/binary', async (req, reply) => {
    void reply.header('inference-header-content-length', req.headers['inference-header-content-length']).type('application/octet-stream');
    return req.body as Buffer;
  });
  await app.listen({ port: httpPort, host: '127.0.0.1' });
  const defs = loadSync(resolve(PROTO_DIR, 'grpc_service.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = loadPackageDefinition(defs) as unknown as { inference: { GRPCInferenceService: { service: never } } };
  const server = new Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
  type Req = { model_name: string; id: string; inputs: { name: string; datatype: string; shape: string[] }[]; raw_input_contents: Buffer[] };
  server.addService(pkg.inference.GRPCInferenceService.service, {
    ModelInfer: (call: ServerUnaryCall<Req, unknown>, cb: sendUnaryData<unknown>) => {
      const r = call.request;
      cb(null, {
        model_name: r.model_name,
        model_version: '1',
        id: r.id,
        outputs: r.inputs.map((t) => ({ ...t, name: 'y' })),
        raw_output_contents: r.raw_input_contents,
      });
    },
  } as UntypedServiceImplementation);
  await new Promise<void>((ok, fail) => server.bindAsync(`127.0.0.1:${grpcPort}`, ServerCredentials.createInsecure(), (e) => (e ? fail(e) : ok())));
  process.stdout.write('ready\n');
}

/**
 * The HTTP/2 floor: node:http2 answering every stream with its request bytes as a gRPC message
 * (same length-prefixed framing and trailers, no protobuf work). A ModelInferRequest's bytes decode
 * as a ModelInferResponse, so the same gRPC client drives it. What any gRPC server on Node pays
 * before doing anything: the reason "gRPC ≤ REST" is out of reach on this runtime.
 */
function h2Floor(port: number): void {
  const server = createHttp2Server();
  server.on('stream', (stream) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  });
  server.listen(port, '127.0.0.1');
}

/** The null model: y = x, any [batch, n] FP32 tensor, batched like any model. */
function nullRepository(): string {
  const repo = mkdtempSync(join(tmpdir(), 'tandem-overhead-'));
  mkdirSync(join(repo, 'null', '1'), { recursive: true });
  writeFileSync(
    join(repo, 'null', 'config.json'),
    JSON.stringify({
      backend: 'node',
      max_batch_size: 64,
      dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 1024 },
      replicas: 1,
      device: { kind: 'cpu', threads_per_replica: 1, max_inflight_per_replica: 1 },
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, -1] }],
    }),
  );
  writeFileSync(
    join(repo, 'null', '1', 'model.ts'),
    "import { defineModel } from '@tandem/sdk';\nexport default defineModel({ execute: ({ x }) => ({ y: { datatype: 'FP32', shape: x!.shape, data: x!.data } }) });\n",
  );
  return repo;
}

const cpuMs = (pid: number): number => cpuSeconds(pid) * 1000;

class Client {
  private constructor(private readonly child: ChildProcess) {}
  static start(): Client {
    return new Client(fork(resolve(__dirname, 'overhead-client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }
  run(p: Phase): Promise<PhaseResult> {
    return new Promise((ok, fail) => {
      const onExit = (c: number | null): void => fail(new Error(`load client exited with ${c}`));
      this.child.once('exit', onExit);
      this.child.once('message', (m: PhaseResult) => {
        this.child.off('exit', onExit);
        ok(m);
      });
      this.child.send(p);
    });
  }
  stop(): void {
    this.child.kill('SIGTERM');
  }
}

interface Row {
  server: 'gateway' | 'before' | 'plain' | 'h2floor';
  transport: Transport;
  size: keyof typeof SIZES;
}

async function main(): Promise<void> {
  say(
    `bench:overhead — ${ROUNDS} interleaved rounds of ${SECONDS}s phases, c=${CONCURRENCY}; FP32 [1,${SIZES.small}] and [1,${SIZES.large}] (${(SIZES.large * 4) / 1024} KiB)`,
  );
  const databaseUrl = await benchDatabase('tandem_bench_online', process.env.DATABASE_URL);
  const key = `tdm_bench_${randomBytes(12).toString('hex')}`;
  const repo = nullRepository();
  const [gwPort, gwGrpc, plainPort, plainGrpc, h2Port] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const startGateway = (main: string, http: number, grpc: number, prefix: string): Promise<ChildProcess> =>
    spawnServer(
      [...nodeArgs, main],
      {
        ...process.env,
        ...chooseAllocator('glibc', process.env).env,
        GATEWAY_PORT: String(http),
        GATEWAY_GRPC_PORT: String(grpc),
        HOST: '127.0.0.1',
        TANDEM_ADMIN_KEY: key,
        DATABASE_URL: databaseUrl,
        QUEUE_PREFIX: prefix,
        MODEL_REPOSITORY: repo,
      },
      `http://127.0.0.1:${http}/v2/health/ready`,
    );
  const gateway = await startGateway('dist/apps/gateway/src/main.js', gwPort, gwGrpc, 'benchoverhead');
  const compareMain = process.env.BENCH_COMPARE_GATEWAY;
  const [cmpPort, cmpGrpc] = compareMain ? [await freePort(), await freePort()] : [0, 0];
  const before = compareMain ? await startGateway(compareMain, cmpPort, cmpGrpc, 'benchoverheadbefore') : undefined;
  const plain = await spawnServer([__filename, '--plain', String(plainPort), String(plainGrpc), String(h2Port)], process.env);
  const client = Client.start();
  const rows: Row[] = [];
  const servers = before ? (['gateway', 'before', 'plain'] as const) : (['gateway', 'plain'] as const);
  for (const transport of ['json', 'binary', 'grpc', 'grpcraw'] as const)
    for (const size of ['small', 'large'] as const) for (const server of servers) rows.push({ server, transport, size });
  for (const size of ['small', 'large'] as const) rows.push({ server: 'h2floor', transport: 'grpc', size });
  const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
  if (only) rows.splice(0, rows.length, ...rows.filter((r) => only.test(`${r.server}/${r.transport}/${r.size}`)));
  const phase = (r: Row, seconds: number): Phase => ({
    transport: r.transport,
    elements: SIZES[r.size],
    seconds,
    concurrency: CONCURRENCY,
    ...(r.server === 'gateway'
      ? { httpPort: gwPort, grpcAddr: `127.0.0.1:${gwGrpc}`, path: '/v2/models/null/infer', key }
      : r.server === 'before'
        ? { httpPort: cmpPort, grpcAddr: `127.0.0.1:${cmpGrpc}`, path: '/v2/models/null/infer', key }
        : { httpPort: plainPort, grpcAddr: `127.0.0.1:${r.server === 'h2floor' ? h2Port : plainGrpc}`, path: r.transport === 'json' ? '/json' : '/binary' }),
  });
  const results = new Map<string, { us: number[]; rps: number[]; errors: number }>();
  const id = (r: Row): string => `${r.server}/${r.transport}/${r.size}`;
  try {
    for (const r of rows) await client.run(phase(r, 1)); // warm-up: JIT, connections, arenas
    for (let round = 1; round <= ROUNDS; round++) {
      const line: string[] = [];
      for (const r of rows) {
        const pid = (r.server === 'gateway' ? gateway : r.server === 'before' ? before! : plain).pid!; // plain hosts the h2 floor too
        const c0 = cpuMs(pid);
        const res = await client.run(phase(r, SECONDS));
        const us = ((cpuMs(pid) - c0) * 1000) / Math.max(1, res.ok);
        const acc = results.get(id(r)) ?? { us: [], rps: [], errors: 0 };
        acc.us.push(us);
        acc.rps.push(res.ok / res.seconds);
        acc.errors += res.errors;
        results.set(id(r), acc);
        line.push(`${id(r)} ${us.toFixed(0)} µs/req ${(res.ok / res.seconds).toFixed(0)}/s${res.errors ? ` ${res.errors} errors (${res.firstError})` : ''}`);
      }
      say(`round ${round}: ${line.join(' | ')}`);
    }
  } finally {
    client.stop();
    gateway.kill('SIGTERM');
    before?.kill('SIGTERM');
    plain.kill('SIGTERM');
  }
  rmSync(repo, { recursive: true, force: true });
  const mb = ((SIZES.large - SIZES.small) * 4) / (1024 * 1024);
  const out: Record<string, number> = {};
  say('medians (server CPU µs per request at [1,16]; µs per MB of tensor from the [1,16] → [1,65536] slope; ratio gateway / plain):');
  for (const transport of ['json', 'binary', 'grpc', 'grpcraw'] as const) {
    if (!['small', 'large'].every((size) => ['gateway', 'plain'].every((sv) => results.has(`${sv}/${transport}/${size}`)))) continue;
    const m = (server: Row['server'], size: Row['size']): number => median(results.get(`${server}/${transport}/${size}`)!.us);
    const perReq = { gateway: m('gateway', 'small'), plain: m('plain', 'small') };
    const perMb = { gateway: (m('gateway', 'large') - perReq.gateway) / mb, plain: (m('plain', 'large') - perReq.plain) / mb };
    const errs = (['gateway', 'plain'] as const).reduce(
      (s, sv) => s + results.get(`${sv}/${transport}/small`)!.errors + results.get(`${sv}/${transport}/large`)!.errors,
      0,
    );
    say(
      `${transport.padEnd(6)} per request: gateway ${perReq.gateway.toFixed(0)} µs, plain ${perReq.plain.toFixed(0)} µs (×${(perReq.gateway / perReq.plain).toFixed(2)}) | ` +
        `per MB: gateway ${perMb.gateway.toFixed(0)} µs, plain ${perMb.plain.toFixed(0)} µs (×${(perMb.gateway / perMb.plain).toFixed(2)}) | ` +
        `gateway req/s small ${median(results.get(`gateway/${transport}/small`)!.rps).toFixed(0)}, large ${median(results.get(`gateway/${transport}/large`)!.rps).toFixed(0)} | errors ${errs}`,
    );
    Object.assign(out, {
      [`${transport}_gateway_us_req`]: Math.round(perReq.gateway),
      [`${transport}_plain_us_req`]: Math.round(perReq.plain),
      [`${transport}_gateway_us_mb`]: Math.round(perMb.gateway),
      [`${transport}_plain_us_mb`]: Math.round(perMb.plain),
      [`${transport}_errors`]: errs,
    });
    if (transport === 'grpc' && ['small', 'large'].every((size) => results.has(`h2floor/grpc/${size}`))) {
      const f = { req: m('h2floor', 'small'), mb: (m('h2floor', 'large') - m('h2floor', 'small')) / mb };
      say(
        `grpc   HTTP/2 floor (node:http2 framing only): per request ${f.req.toFixed(0)} µs (×${(f.req / perReq.plain).toFixed(2)} plain grpc-js), per MB ${f.mb.toFixed(0)} µs`,
      );
      Object.assign(out, { grpc_h2floor_us_req: Math.round(f.req), grpc_h2floor_us_mb: Math.round(f.mb) });
    }
    if (before && ['small', 'large'].every((size) => results.has(`before/${transport}/${size}`))) {
      const b = { req: m('before', 'small'), mb: (m('before', 'large') - m('before', 'small')) / mb };
      say(
        `${transport.padEnd(6)} before (${compareMain}): per request ${b.req.toFixed(0)} µs (×${(b.req / perReq.plain).toFixed(2)} plain), per MB ${b.mb.toFixed(0)} µs (×${(b.mb / perMb.plain).toFixed(2)})`,
      );
      Object.assign(out, { [`${transport}_before_us_req`]: Math.round(b.req), [`${transport}_before_us_mb`]: Math.round(b.mb) });
    }
  }
  if (out.grpcraw_gateway_us_req !== undefined && out.binary_gateway_us_req !== undefined) {
    // Both with a cheap client, so both run at about the same rate: the servers' costs compare.
    const r = out.grpcraw_gateway_us_req / out.binary_gateway_us_req;
    say(`gateway gRPC (raw HTTP/2 client) / REST binary, CPU per request: ×${r.toFixed(2)} (target <= 1)`);
  }
  say(JSON.stringify({ bench: 'overhead', ...out }));
}

if (process.argv[2] === '--plain') void plainServers(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
else
  main().catch((e: unknown) => {
    process.stderr.write(`bench:overhead failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
