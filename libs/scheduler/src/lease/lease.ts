import type { AllocationGrant, RevocationNotice } from '../scheduler.types';

export type LeaseState = 'active' | 'revoking' | 'released' | 'lost';

/**
 * A held allocation. Workers watch `signal` (aborted on revocation or loss) or `onRevoke`, stop
 * at their next safe point and call `release()`. The lease keeper renews it until then.
 */
export class Lease {
  private readonly ac = new AbortController();
  private readonly handlers = new Set<(n: RevocationNotice) => void>();
  private _state: LeaseState = 'active';
  private _notice: RevocationNotice | null = null;
  private releasing: Promise<void> | null = null;

  constructor(
    readonly grant: AllocationGrant,
    private readonly doRelease: (lease: Lease) => Promise<void>,
  ) {}

  get id(): string {
    return this.grant.groupId;
  }
  get allocationIds(): string[] {
    return this.grant.devices.map((d) => d.allocationId);
  }
  get state(): LeaseState {
    return this._state;
  }
  /** Aborted when the share is revoked (`reason` is the RevocationNotice) or lost. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }
  get revocation(): RevocationNotice | null {
    return this._notice;
  }

  /** Called once when revoked (at once if it already was). Returns an unsubscribe. */
  onRevoke(h: (n: RevocationNotice) => void): () => void {
    if (this._notice) {
      const n = this._notice;
      queueMicrotask(() => h(n));
      return () => undefined;
    }
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }

  /** @internal the keeper reports a revocation (NOTIFY, or seen at renewal). */
  revoked(n: RevocationNotice): void {
    if (this._notice || this._state === 'released') return;
    this._notice = n;
    if (this._state === 'active') this._state = n.reason === 'preempted' ? 'revoking' : 'lost';
    for (const h of this.handlers) {
      try {
        h(n);
      } catch {
        // a holder's handler must not break delivery to the others
      }
    }
    this.handlers.clear();
    this.ac.abort(n);
  }

  /** @internal the ledger no longer has it (expired, node lost, force-reclaimed). */
  lost(n: RevocationNotice): void {
    if (this._state === 'released') return;
    this.revoked(n);
    this._state = 'lost';
  }

  /** @internal */
  markReleased(): void {
    this._state = 'released';
  }

  /** Gives the share back (idempotent). */
  release(): Promise<void> {
    this.releasing ??= this.doRelease(this);
    return this.releasing;
  }
}
