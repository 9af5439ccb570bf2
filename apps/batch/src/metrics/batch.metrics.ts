import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { counter, gauge } from '@tandem/shared';

const WINDOW_MS = 10_000;

/** Depth sources of every live instance in this process, read at scrape time. */
const depthSources = new Set<() => Promise<Record<string, number>>>();
/** Completion times and sizes of recent chunks, for the items/s gauge. */
const recent: { at: number; items: number }[] = [];

/** tandem_batch_* metrics on prom-client's default registry. */
@Injectable()
export class BatchMetrics implements OnModuleDestroy {
  private readonly processed = counter({ name: 'batch_chunks_processed_total', help: 'Chunks committed' });
  private readonly failed = counter({ name: 'batch_chunks_failed_total', help: 'Chunk attempts that failed (retried or dead-lettered)' });
  private readonly items = counter({ name: 'batch_items_processed_total', help: 'Items committed' });
  // owner = the API key's id (bounded by the number of keys), share = owned | borrowed.
  private readonly device = counter({
    name: 'batch_device_seconds_total',
    help: 'Unit-seconds batch runs held device units, by owner (key id) and share',
    labelNames: ['owner', 'share'],
  });
  private depthSource?: () => Promise<Record<string, number>>;

  constructor() {
    gauge({
      name: 'batch_items_per_second',
      help: `Items committed per second over the last ${WINDOW_MS / 1000} s in this process`,
      collect() {
        const since = Date.now() - WINDOW_MS;
        while (recent.length > 0 && recent[0].at < since) recent.shift();
        this.set(recent.reduce((s, r) => s + r.items, 0) / (WINDOW_MS / 1000));
      },
    });
    gauge({
      name: 'batch_queue_depth',
      help: 'Chunk jobs in the queue store, by state',
      labelNames: ['state'],
      async collect() {
        const [source] = depthSources;
        if (!source) return;
        const counts = await source().catch(() => ({}) as Record<string, number>);
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }

  setDepthSource(fn: () => Promise<Record<string, number>>): void {
    this.depthSource = fn;
    depthSources.add(fn);
  }

  chunkProcessed(items: number): void {
    this.processed.inc();
    this.items.inc(items);
    recent.push({ at: Date.now(), items });
    if (recent.length > 100_000) recent.splice(0, recent.length - 100_000);
  }

  deviceSeconds(owner: string, owned: number, borrowed: number): void {
    if (owned > 0) this.device.inc({ owner, share: 'owned' }, owned);
    if (borrowed > 0) this.device.inc({ owner, share: 'borrowed' }, borrowed);
  }

  chunkFailed(): void {
    this.failed.inc();
  }

  onModuleDestroy(): void {
    if (this.depthSource) depthSources.delete(this.depthSource);
  }
}
