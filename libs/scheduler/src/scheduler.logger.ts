/** The slice of a pino logger the scheduler uses; pass the app's logger, or get silence. */
export interface SchedulerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: SchedulerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
