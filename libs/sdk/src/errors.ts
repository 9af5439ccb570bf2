const INPUT_ERROR = Symbol.for('tandem.sdk.input-error');

/**
 * Thrown by a model's `execute` (or a task's `validateItem`/`run`) when the request itself is
 * wrong: the gateway answers 400 (gRPC INVALID_ARGUMENT) with this message. Any other error is
 * the model's fault: 500 with an error id, the message goes to the log.
 */
export class InputError extends Error {
  readonly [INPUT_ERROR] = true;
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** True for an InputError from any copy of the SDK (user bundles carry their own). */
export function isInputError(e: unknown): e is InputError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[INPUT_ERROR] === true;
}
