import { ConfigValidationError } from '@tandem/shared';
import type { Reducer } from '../reducers/reducer';
import type { BatchTask } from '../tasks/batch-task';

/** Injection token for the UserCode loaded at start (see loadUserCode). */
export const USER_CODE = Symbol('USER_CODE');

/** The operator's tasks and reducers from BATCH_TASKS_DIR, as loaded once at process start. */
export interface UserCode {
  /** Absolute path of the folder they were read from. */
  readonly dir: string;
  readonly tasks: ReadonlyMap<string, BatchTask>;
  readonly reducers: ReadonlyMap<string, Reducer>;
  /** Files that did not load, by the name they would have had: why (relative paths only). */
  readonly failedTasks: ReadonlyMap<string, string>;
  readonly failedReducers: ReadonlyMap<string, string>;
}

export const NO_USER_CODE: UserCode = {
  dir: '',
  tasks: new Map(),
  reducers: new Map(),
  failedTasks: new Map(),
  failedReducers: new Map(),
};

/**
 * The folder cannot be loaded unambiguously (a name used twice, a built-in shadowed, an explicit
 * BATCH_TASKS_DIR missing). A configuration error: the app exits 2 and is not restarted, since
 * the same files would fail again.
 */
export class UserCodeConflictError extends ConfigValidationError {
  constructor(problems: readonly string[]) {
    super(problems.map((p) => `BATCH_TASKS_DIR: ${p}`));
    this.name = 'UserCodeConflictError';
  }
}
