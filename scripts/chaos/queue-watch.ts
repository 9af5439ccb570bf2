import { Redis } from 'ioredis';

/** One BullMQ event as read from the queue's event stream. */
export interface QueueEvent {
  at: number;
  event: string;
  jobId: string;
}

/** Active jobs at one instant: job id → lock token (`<worker uuid>:<n>`). */
export type ActiveJobs = Map<string, string>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Watches a BullMQ queue from outside (Redis only), so a fault test can prove what a fault hit:
 * which jobs were active and under which worker's lock, which workers still take jobs, and the
 * queue's event log (`active`, `stalled`, `completed`…), kept here because a FLUSHALL wipes the
 * stream. Worker processes expose no id; a BullMQ worker's lock tokens (`<uuid>:<slot>`) carry
 * its random uuid, which is what ties a job to the process holding it.
 */
export class QueueWatch {
  readonly events: QueueEvent[] = [];
  /** Each (job, lock token) pair seen, with when it was first seen: a worker taking a job. */
  private readonly takes = new Map<string, { worker: string; first: number }>();
  private readonly redis: Redis;
  private lastEventId = '0-0';
  private running = false;
  private pollErrors = 0;
  private loop: Promise<void> | null = null;

  constructor(
    url: string,
    private readonly key: string,
    private readonly pollMs = 100,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    this.redis.on('error', () => undefined);
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await this.poll().catch(() => this.pollErrors++);
        await sleep(this.pollMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.redis.disconnect();
  }

  /** Reads the active list and its locks now (and the new events); records every token. */
  async poll(): Promise<ActiveJobs> {
    const now = Date.now();
    const ids = await this.redis.lrange(`${this.key}:active`, 0, -1);
    const locks = ids.length ? await this.redis.mget(...ids.map((id) => `${this.key}:${id}:lock`)) : [];
    const active: ActiveJobs = new Map();
    ids.forEach((id, i) => {
      const token = locks[i];
      if (!token) return;
      active.set(id, token);
      // A worker's tokens are per concurrency slot (reused), so a take is the job with its token.
      const take = `${id} ${token}`;
      if (!this.takes.has(take)) this.takes.set(take, { worker: workerOf(token), first: now });
    });
    const streams = await this.redis.xread('COUNT', 10_000, 'STREAMS', `${this.key}:events`, this.lastEventId);
    for (const [, entries] of streams ?? []) {
      for (const [id, fields] of entries) {
        this.lastEventId = id;
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
        this.events.push({ at: Number(id.split('-')[0]), event: f.get('event') ?? '?', jobId: f.get('jobId') ?? '' });
      }
    }
    return active;
  }

  /** Jobs waiting, prioritized, delayed or active right now (what a FLUSHALL would lose). */
  async queued(): Promise<number> {
    const [wait, prio, delayed, active] = await Promise.all([
      this.redis.llen(`${this.key}:wait`),
      this.redis.zcard(`${this.key}:prioritized`),
      this.redis.zcard(`${this.key}:delayed`),
      this.redis.llen(`${this.key}:active`),
    ]);
    return wait + prio + delayed + active;
  }

  /** For failure messages: what the watch has seen so far. */
  summary(): string {
    const byEvent = new Map<string, number>();
    for (const e of this.events) byEvent.set(e.event, (byEvent.get(e.event) ?? 0) + 1);
    const workers = new Map<string, number>();
    for (const t of this.takes.values()) workers.set(t.worker, Math.max(workers.get(t.worker) ?? 0, t.first));
    return `events ${JSON.stringify(Object.fromEntries(byEvent))}; workers (last job taken) ${JSON.stringify(Object.fromEntries(workers))}; pollErrors ${this.pollErrors}`;
  }

  /** Worker uuids that took a job after `since`. */
  workersTakingJobsSince(since: number): Set<string> {
    const out = new Set<string>();
    for (const t of this.takes.values()) if (t.first > since) out.add(t.worker);
    return out;
  }

  /**
   * The jobs of `before` (read just ahead of a kill) that stalled after `since`: their lock
   * expired, which happens only when the process holding it is gone.
   */
  stalledSince(before: ActiveJobs, since: number): string[] {
    return [...before.keys()].filter((id) => this.eventsOf(id, since).includes('stalled'));
  }

  /** The worker uuids holding `ids` in `before`. */
  holders(before: ActiveJobs, ids: readonly string[]): Set<string> {
    return new Set(ids.map((id) => workerOf(before.get(id) ?? '')));
  }

  /**
   * What a killed worker held: the jobs of `before` that stalled after `killedAt`, provided they
   * were all under one worker's lock, that worker took no job afterwards, and every job it held
   * stalled. Empty when the evidence does not line up.
   */
  heldByKilled(before: ActiveJobs, killedAt: number, marginMs: number): string[] {
    const stalled = this.stalledSince(before, killedAt);
    const owners = this.holders(before, stalled);
    if (stalled.length === 0 || owners.size !== 1) return [];
    const [owner] = owners;
    if (this.workersTakingJobsSince(killedAt + marginMs).has(owner!)) return [];
    const all = [...before].filter(([, token]) => workerOf(token) === owner).map(([id]) => id);
    return all.length === stalled.length ? stalled : [];
  }

  /** Events of `jobId` after `since`, in order. */
  eventsOf(jobId: string, since = 0): string[] {
    return this.events.filter((e) => e.jobId === jobId && e.at >= since).map((e) => e.event);
  }

  /** True once every job in `ids` stalled (its lock expired) after `since`, then ran again to completion. */
  rerunAfterStall(ids: readonly string[], since: number): boolean {
    return ids.every((id) => {
      const ev = this.eventsOf(id, since);
      const s = ev.indexOf('stalled');
      const a = s < 0 ? -1 : ev.indexOf('active', s + 1);
      return a > s && ev.indexOf('completed', a + 1) > a;
    });
  }
}

export function workerOf(token: string): string {
  const i = token.lastIndexOf(':');
  return i < 0 ? token : token.slice(0, i);
}
