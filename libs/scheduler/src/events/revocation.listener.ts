import { Client } from 'pg';
import { SCHEDULER_CHANNEL } from '../ledger/sql';
import type { RevocationNotice } from '../scheduler.types';
import type { SchedulerLogger } from '../scheduler.logger';

export interface ReleaseEvent {
  id: string;
  groupId: string;
  deviceId: string;
  holder: string;
  reason: string;
}

type Handler<T> = (e: T) => void;

/** A `revoke` NOTIFY payload (see PlacementTx.commit) as the notice holders get. */
export function revocationNotice(msg: Record<string, unknown>): RevocationNotice {
  return {
    allocationId: String(msg.id),
    groupId: String(msg.groupId),
    deviceId: String(msg.deviceId),
    holder: String(msg.holder),
    deadline: new Date(String(msg.deadline)),
    reason: 'preempted',
    ...(typeof msg.at === 'number' ? { revokedAtMs: msg.at } : {}),
  };
}

/**
 * One dedicated Postgres connection per process, LISTENing on the scheduler channel. Revocations
 * reach holders in milliseconds; releases wake online requests waiting for revoked shares.
 * If the connection drops it reconnects; lease renewal (which reports `revoking`) covers the gap.
 */
export class RevocationListener {
  private client: Client | null = null;
  private stopped = false;
  private readonly revokeHandlers = new Set<Handler<RevocationNotice>>();
  private readonly releaseHandlers = new Set<Handler<ReleaseEvent>>();
  private reconnectTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly logger: SchedulerLogger,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  private async connect(): Promise<void> {
    const c = new Client({ connectionString: this.url, application_name: 'tandem-scheduler-listen' });
    c.on('notification', (m) => {
      if (m.channel === SCHEDULER_CHANNEL && m.payload) this.dispatch(m.payload);
    });
    c.on('error', (err) => {
      this.logger.warn({ err }, 'scheduler LISTEN connection failed; reconnecting');
      this.scheduleReconnect();
    });
    c.on('end', () => this.scheduleReconnect());
    await c.connect();
    await c.query(`LISTEN ${SCHEDULER_CHANNEL}`);
    this.client = c;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.client = null;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect().catch((err: unknown) => {
        this.logger.warn({ err }, 'scheduler LISTEN reconnect failed');
        this.scheduleReconnect();
      });
    }, 500);
    this.reconnectTimer.unref();
  }

  private dispatch(payload: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(payload) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg.e === 'revoke') {
      const notice = revocationNotice(msg);
      for (const h of this.revokeHandlers) h(notice);
    } else if (msg.e === 'release') {
      const ev: ReleaseEvent = {
        id: String(msg.id),
        groupId: String(msg.groupId),
        deviceId: String(msg.deviceId),
        holder: String(msg.holder),
        reason: String(msg.reason),
      };
      for (const h of this.releaseHandlers) h(ev);
    }
  }

  /** Every revocation in the cluster (filter by holder/allocation yourself); returns an unsubscribe. */
  onRevoke(h: Handler<RevocationNotice>): () => void {
    this.revokeHandlers.add(h);
    return () => this.revokeHandlers.delete(h);
  }

  /**
   * Releases of shares that were being revoked or pending, and every reclaim (expired, node lost,
   * forced). Ordinary releases of active shares are not announced (see releaseWhere).
   */
  onRelease(h: Handler<ReleaseEvent>): () => void {
    this.releaseHandlers.add(h);
    return () => this.releaseHandlers.delete(h);
  }

  get connected(): boolean {
    return this.client !== null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}
