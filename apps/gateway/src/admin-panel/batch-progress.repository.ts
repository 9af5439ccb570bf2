import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** The counters of one batch the history sampler charts. */
export interface BatchProgressRow {
  id: string;
  task: string;
  state: string;
  items: number;
  settled: number;
  ownedS: number;
  borrowedS: number;
}

interface Raw {
  id: string;
  task: string;
  state: string;
  item_count: string;
  settled: string;
  device_owned_s: number;
  device_borrowed_s: number;
}

/**
 * Read-only view of the batch app's `batch` table (same database): unfinished batches and those
 * that finished within the window, newest first. Reading the table spares the sampler an
 * authenticated call to the batch app every few seconds.
 */
@Injectable()
export class BatchProgressRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async recent(windowS: number, limit: number): Promise<BatchProgressRow[]> {
    const rows = (await this.ds.query(
      `SELECT id, task, state, item_count, items_done + items_failed AS settled, device_owned_s, device_borrowed_s
         FROM batch
        WHERE state <> 'submitting' AND (finished_at IS NULL OR finished_at > now() - make_interval(secs => $1))
        ORDER BY seq DESC
        LIMIT $2`,
      [windowS, limit],
    )) as Raw[];
    return rows.map((r) => ({
      id: r.id,
      task: r.task,
      state: r.state,
      items: Number(r.item_count),
      settled: Number(r.settled),
      ownedS: Number(r.device_owned_s),
      borrowedS: Number(r.device_borrowed_s),
    }));
  }
}
