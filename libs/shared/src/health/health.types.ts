/** A dependency the app needs before it can serve (Postgres, the queue store, models…). */
export interface ReadinessCheck {
  readonly name: string;
  /** Resolves when healthy; rejects (or times out) otherwise. */
  check(): Promise<void>;
}

export const READINESS_CHECKS = Symbol('READINESS_CHECKS');
