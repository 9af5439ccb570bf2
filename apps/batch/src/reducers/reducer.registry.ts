import { Inject, Injectable } from '@nestjs/common';
import { USER_CODE, type UserCode } from '../user-tasks/user-code';
import { BUILT_IN_REDUCERS } from './built-in.reducers';
import type { Reducer } from './reducer';

/** The built-in reducers plus the user's from BATCH_TASKS_DIR (`<name>.reducer.ts`), by name. */
@Injectable()
export class ReducerRegistry {
  private readonly reducers = new Map<string, Reducer>();
  private readonly failed: ReadonlyMap<string, string>;

  constructor(@Inject(USER_CODE) user: UserCode) {
    for (const r of BUILT_IN_REDUCERS) this.reducers.set(r.name, r);
    // The loader refused any user reducer shadowing a built-in, so nothing is overwritten here.
    for (const [name, r] of user.reducers) this.reducers.set(name, r);
    this.failed = user.failedReducers;
  }

  find(name: string): Reducer | undefined {
    return this.reducers.get(name);
  }

  names(): string[] {
    return [...this.reducers.keys()];
  }

  /** Why `name` is not a usable reducer: a user file that failed to load, or no such reducer. */
  whyMissing(name: string): string {
    const failed = this.failed.get(name);
    if (failed !== undefined) return `reducer "${name}" failed to load: ${failed}`;
    return `unknown reducer "${name}" (known: ${this.names().join(', ')})`;
  }
}
