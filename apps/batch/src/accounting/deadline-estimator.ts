import type { AdmittedWork, DeadlineState } from './usage.repository';

/** Below this share of the remaining time left over, a batch is urgent (owned units first, raised priority). */
export const URGENT_SLACK = 0.25;

export interface Estimate {
  /** When the batch would finish if admitted now (epoch ms). */
  completionAt: number;
  ownSeconds: number;
  /** Earlier-deadline work ahead of it, seconds on the same units. */
  aheadSeconds: number;
  feasible: boolean;
}

/**
 * Earliest-deadline-first on `units` owned units: a batch with deadline D finishes after its own
 * work plus every admitted batch's remaining work whose deadline is ≤ D. A batch whose model has
 * no measurement yet is costed at the new batch's rate (the best guess there is).
 */
export function estimateCompletion(a: {
  now: number;
  deadline: number;
  lines: number;
  rate: number;
  units: number;
  admitted: readonly AdmittedWork[];
}): Estimate {
  const perSecond = a.rate * a.units;
  const own = a.lines / perSecond;
  const ahead = (until: number): number =>
    a.admitted.filter((w) => w.deadline.getTime() <= until).reduce((s, w) => s + w.remaining / ((w.rate ?? a.rate) * a.units), 0);
  const aheadSeconds = ahead(a.deadline);
  const completionAt = a.now + (own + aheadSeconds) * 1000;
  if (completionAt <= a.deadline) return { completionAt, ownSeconds: own, aheadSeconds, feasible: true };
  // The earliest deadline it could meet: with a later deadline more admitted work may go first;
  // ahead() only grows and is bounded, so this fixpoint search ends.
  let t = completionAt;
  for (let i = 0; i <= a.admitted.length + 1; i++) {
    const next = a.now + (own + ahead(t)) * 1000;
    if (next <= t) return { completionAt: next, ownSeconds: own, aheadSeconds: ahead(t), feasible: false };
    t = next;
  }
  return { completionAt: t, ownSeconds: own, aheadSeconds: ahead(t), feasible: false };
}

/** True when the batch's remaining work at its measured rate leaves less than URGENT_SLACK of its remaining time. */
export function isUrgent(s: DeadlineState, now: number): boolean {
  const left = (s.deadline.getTime() - now) / 1000;
  if (left <= 0) return true;
  if (s.rate === null || s.rate <= 0) return false;
  const need = s.remaining / (s.rate * Math.max(1, s.units));
  return need >= left * (1 - URGENT_SLACK);
}
