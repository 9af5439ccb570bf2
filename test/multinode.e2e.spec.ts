import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '@tandem/persistence';
import { BATCH_CHUNK_QUEUE } from '../apps/batch/src/jobs/job-catalogue';
import { QueueWatch } from '../scripts/chaos/queue-watch';
import { buildBurnModel } from '../scripts/generate-models';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { NetnsLab, type NsHost, type NsProcess } from './support/netns';
import { NetnsStores } from './support/netns-stores';

const DIST = resolve(process.cwd(), 'dist');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PREFIX = 'mn';
const ITEMS = 8_000;
const CHUNK = 100;

interface AllocRow {
  node: string;
  holderNode: string | null;
  kind: 'online' | 'batch';
  state: string;
  borrowed: boolean;
  share: number;
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Two machines for real: network namespaces on this box, each host running a gateway and a batch
 * worker under its own node name, on one Postgres and one Redis in a third namespace. A batch
 * spreads over both; online load on host 1 takes back only host 1's borrowed unit; host 2 is
 * killed (processes and link), the ledger reclaims its allocations and host 1 finishes its chunks,
 * each exactly once. Needs root and iproute2 (.ci/run installs it).
 */
describe('two hosts (network namespaces) on one ledger and one queue', () => {
  const lab = new NetnsLab();
  const stores = new NetnsStores(lab);
  let repo: TempRepo;
  let pg: Client;
  let watch: QueueWatch;
  const nodes = [`mn-${lab.id}-1`, `mn-${lab.id}-2`];
  const gateways: NsProcess[] = [];
  const workers: NsProcess[] = [];

  const ledger = async (): Promise<AllocRow[]> =>
    (
      await pg.query<AllocRow>(
        `SELECT d.node_name AS node, a.holder_node AS "holderNode", a.kind, a.state, a.borrowed, a.share_milli AS share
           FROM sched_allocation a JOIN sched_device d ON d.id = a.device_id`,
      )
    ).rows;
  const sum = (rows: AllocRow[], f: (r: AllocRow) => boolean): number => rows.filter(f).reduce((s, r) => s + r.share, 0);
  const metric = async (host: NsHost, name: string): Promise<number> => {
    const text = await (await fetch(`http://${host.addr}:8100/metrics`)).text();
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };
  const batchUrl = (): string => `http://${lab.hosts[0]!.addr}:8100`;

  beforeAll(async () => {
    lab.create(2);
    await stores.start();
    await runMigrations(stores.databaseUrl);
    pg = new Client({ connectionString: stores.databaseUrl });
    await pg.connect();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: { max_batch_size: 64, replicas: 1, device: { kind: 'cpu', threads_per_replica: 1 } } } });
    mkdirSync(join(repo.dir, 'burn', '1'), { recursive: true });
    writeFileSync(join(repo.dir, 'burn', '1', 'model.onnx'), buildBurnModel(32, 256));
    writeFileSync(join(repo.dir, 'burn', 'config.json'), JSON.stringify({ max_batch_size: 32, replicas: 1, device: { threads_per_replica: 1 } }));

    const common = {
      DATABASE_URL: stores.databaseUrl,
      REDIS_URL: stores.redisUrl,
      QUEUE_PREFIX: PREFIX,
      LOG_LEVEL: 'info',
      TANDEM_AUTH: 'off', // auth has its own tests
      HOST: '0.0.0.0',
      HOME: process.env.HOME ?? '/tmp',
      MODEL_REPOSITORY: repo.dir,
      // Each host: one 2-core CPU device, half online, half batch, batch may borrow the idle half.
      SCHEDULER_DISCOVER_GPUS: 'false',
      SCHEDULER_DISCOVER_CPU: 'false',
      SCHEDULER_DECLARED_DEVICES: JSON.stringify([{ kind: 'cpu', id: 'cpu0', cores: 2, memoryMiB: 4096 }]),
      SCHEDULER_DEFAULT_ONLINE_SHARE: '0.5',
      SCHEDULER_DEFAULT_BATCH_SHARE: '0.5',
      SCHEDULER_DEFAULT_BATCH_MAY_BORROW: 'true',
      // A silent node is lost after 3 s; leases outlive that, so its reclaim is the node-lost path.
      SCHEDULER_HEARTBEAT_MS: '250',
      SCHEDULER_NODE_TIMEOUT_MS: '3000',
      SCHEDULER_LEASE_TTL_MS: '20000',
      SCHEDULER_REAPER_MS: '250',
      SCHEDULER_PREEMPT_GRACE_MS: '2000',
    };
    lab.hosts.forEach((host, k) => {
      const node = { ...common, SCHEDULER_NODE_NAME: nodes[k]! };
      gateways.push(
        lab.run(host.ns, process.execPath, [join(DIST, 'apps/gateway/src/main.js')], {
          ...node,
          GATEWAY_PORT: '8000',
          GATEWAY_GRPC_PORT: '8001',
          BATCH_API_URL: `http://${lab.hosts[0]!.addr}:8100`,
          HYBRID_HOLD_DOWN_MS: '1000',
        }),
      );
      workers.push(
        lab.run(host.ns, process.execPath, [join(DIST, 'apps/batch/src/main.js')], {
          ...node,
          BATCH_PORT: '8100',
          // Host 1 also serves the batch API and runs the reconciler; host 2 only works.
          BATCH_ROLE: k === 0 ? 'all' : 'worker',
          BATCH_CONCURRENCY: '2',
          BATCH_INFER_THREADS: '2',
          BATCH_INFER_BATCH: '25',
          BATCH_LOCK_MS: '2000',
          BATCH_STALLED_INTERVAL_MS: '1000',
          BATCH_RECONCILE_MS: '2000',
          BATCH_BORROW_HOLD_DOWN_MS: '1000',
          BATCH_UNIT_IDLE_MS: '2000',
        }),
      );
    });
    await Promise.all([...gateways.map((g) => g.waitFor(/gateway REST listening/, 60_000)), ...workers.map((w) => w.waitFor(/batch API listening/, 60_000))]);
    watch = new QueueWatch(stores.redisUrl, `${PREFIX}:${BATCH_CHUNK_QUEUE}`);
    watch.start();
  }, 120_000);

  afterAll(async () => {
    await watch?.stop();
    await pg?.end().catch(() => undefined);
    await lab.destroy();
    stores.remove();
    repo?.remove();
  });

  it('every process of a host joins its node; a batch spreads over both hosts; online on host 1 revokes only host 1; host 2 dies and host 1 finishes its chunks exactly once', async () => {
    const [h1, h2] = lab.hosts as [NsHost, NsHost];
    const logs = (): string => [...gateways, ...workers].map((p, i) => `--- process ${i}\n${p.output().slice(-4000)}`).join('\n');

    // Node identity: gateway + worker of a host are one node with one CPU device.
    const devices = (await pg.query<{ id: string; node: string }>('SELECT id, node_name AS node FROM sched_device ORDER BY id')).rows;
    expect(devices).toEqual([
      { id: `${nodes[0]}/cpu0`, node: nodes[0] },
      { id: `${nodes[1]}/cpu0`, node: nodes[1] },
    ]);
    expect((await pg.query('SELECT name, status FROM sched_node ORDER BY name')).rows).toEqual([
      { name: nodes[0], status: 'alive' },
      { name: nodes[1], status: 'alive' },
    ]);

    const items = Array.from({ length: ITEMS }, (_, i) => Array.from({ length: 16 }, (_, j) => ((i * 16 + j) % 89) / 89 - 0.5));
    const sub = await fetch(`${batchUrl()}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'infer', model: 'burn', reducer: 'count', chunkSize: CHUNK, items }),
    });
    expect(sub.status, await sub.clone().text()).toBe(201);
    const id = ((await sub.json()) as { id: string }).id;
    const chunks = ITEMS / CHUNK;

    // 1. Spread: both hosts' workers hold their own unit and borrow the idle online one, and both commit chunks.
    await until(
      async () => {
        const l = await ledger();
        return nodes.every(
          (n) =>
            sum(l, (r) => r.node === n && r.kind === 'batch' && r.borrowed) === 500 && sum(l, (r) => r.node === n && r.kind === 'batch' && !r.borrowed) === 500,
        );
      },
      'both workers holding an owned and a borrowed unit on their own host',
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    const l1 = await ledger();
    expect(l1.filter((r) => r.kind === 'batch').every((r) => r.holderNode === r.node)).toBe(true); // a worker only uses its own host
    await until(
      async () => (await metric(h1, 'tandem_batch_chunks_processed_total')) > 0 && (await metric(h2, 'tandem_batch_chunks_processed_total')) > 0,
      'chunks committed on both hosts',
      30_000,
    );

    // 2. Online load on host 1 only: host 1's gateway claims its online core, revoking host 1's borrowed unit; host 2 is untouched.
    let loading = true;
    let onlineOk = 0;
    const load = Promise.all(
      [0, 1].map(async () => {
        while (loading) {
          const r = await fetch(`http://${h1.addr}:8000/v2/models/scorer/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0.5] }] }),
          }).catch(() => null);
          if (r?.status === 200) onlineOk++;
          await r?.arrayBuffer();
        }
      }),
    );
    let sawHost2Revoking = false;
    try {
      await until(
        async () => {
          const l = await ledger();
          if (l.some((r) => r.node === nodes[1] && r.state === 'revoking')) sawHost2Revoking = true;
          const online1 = sum(l, (r) => r.node === nodes[0] && r.kind === 'online' && r.state === 'active');
          return online1 === 500 && sum(l, (r) => r.node === nodes[0] && r.kind === 'batch' && r.borrowed) === 0 ? l : null;
        },
        'host 1 online holding its core and host 1 batch no longer borrowing',
        20_000,
      );
      const l2 = await ledger();
      expect(sum(l2, (r) => r.node === nodes[1] && r.kind === 'batch' && r.borrowed)).toBe(500);
      expect(l2.filter((r) => r.kind === 'online').every((r) => r.node === nodes[0] && r.holderNode === nodes[0])).toBe(true);
      expect(sawHost2Revoking).toBe(false);
      expect(await metric(h1, 'tandem_hybrid_batch_revocations_total')).toBeGreaterThanOrEqual(1);
      expect(await metric(h2, 'tandem_hybrid_batch_revocations_total')).toBe(0);
      expect(onlineOk).toBeGreaterThan(0);
    } finally {
      loading = false;
      await load;
    }

    // 3. Kill host 2 while it holds chunks: its processes (SIGKILL) and its link.
    const pending = Number((await pg.query(`SELECT count(*) AS n FROM batch_chunk WHERE batch_id = $1 AND state = 'pending'`, [id])).rows[0].n);
    expect(pending, 'the batch must still be running when host 2 dies').toBeGreaterThan(4);
    const l3 = await ledger();
    expect(
      l3.some((r) => r.holderNode === nodes[1] && r.kind === 'batch'),
      'host 2 holds batch units when it dies',
    ).toBe(true);
    const killedAt = Date.now();
    await Promise.all([workers[1]!.kill('SIGKILL'), gateways[1]!.kill('SIGKILL')]);
    // What host 2 held when it died: its locks stay in Redis until they expire (BATCH_LOCK_MS), so a
    // read right after the kill sees exactly them (a read before it could miss a job taken meanwhile).
    const beforeKill = await watch.poll();
    lab.cut(h2);

    // The ledger marks host 2 lost after the node timeout and reclaims everything it held.
    await until(
      async () => {
        const n = (await pg.query(`SELECT status FROM sched_node WHERE name = $1`, [nodes[1]])).rows[0] as { status: string };
        const l = await ledger();
        return n.status === 'lost' && !l.some((r) => r.node === nodes[1] || r.holderNode === nodes[1]);
      },
      'host 2 lost and its allocations reclaimed',
      20_000,
    );
    // By the node-lost path, not lease expiry (leases outlive the test); logs are flushed asynchronously.
    const reclaimLog = (): string =>
      (gateways[0]!.output() + workers[0]!.output())
        .split('\n')
        .filter((l) => /reclaimed allocations/.test(l))
        .join('\n');
    await until(async () => /"nodeLost":[1-9]/.test(reclaimLog()), 'a host 1 reaper logging the node-lost reclaim', 10_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${reclaimLog()}`);
    });

    // Host 2's chunks (active under its worker's lock at the kill) stalled, as only a dead holder's
    // locks do, and ran again on host 1 (the only worker left).
    const held = await until(
      async () => {
        await watch.poll();
        const h = watch.heldByKilled(beforeKill, killedAt, 500);
        return h.length > 0 && watch.rerunAfterStall(h, killedAt) ? h : null;
      },
      "host 2's jobs to stall and run again",
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: killed at ${killedAt}, active then ${JSON.stringify([...beforeKill])}; ${watch.summary()}`);
    });
    expect(held.length).toBeGreaterThanOrEqual(1);

    // Exactly once: the batch succeeds with every item counted once, one partial per chunk.
    const done = await until(
      async () => {
        const r = await fetch(`${batchUrl()}/v1/batches/${id}`);
        const b = (await r.json()) as { state: string; result: unknown; counts: { itemsDone: number; chunksDone: number } };
        return ['succeeded', 'failed', 'cancelled'].includes(b.state) ? b : null;
      },
      'the batch to finish on host 1',
      60_000,
    );
    expect(done.state).toBe('succeeded');
    expect(done.result).toBe(ITEMS);
    expect(done.counts).toMatchObject({ itemsDone: ITEMS, chunksDone: chunks });
    const rows = (
      await pg.query<{ idx: number; state: string; n: number; partial: unknown }>(
        `SELECT idx, state, item_count AS n, partial FROM batch_chunk WHERE batch_id = $1 ORDER BY idx`,
        [id],
      )
    ).rows;
    expect(rows.map((r) => r.idx)).toEqual(Array.from({ length: chunks }, (_, i) => i));
    expect(rows.every((r) => r.state === 'done' && r.partial !== null)).toBe(true);
    expect(rows.reduce((s, r) => s + r.n, 0)).toBe(ITEMS);
    expect(rows.reduce((s, r) => s + Number(r.partial), 0)).toBe(ITEMS); // `count` partials: one per chunk, none twice
    for (const jobId of held) expect(rows[Number(jobId.split('_')[1])]!.state).toBe('done');
  }, 150_000);
});
