import { concatReducer, histogramReducer } from './collection.reducers';
import { countReducer, maxReducer, meanReducer, minReducer, sumReducer, summarizeReducer, topKReducer } from './numeric.reducers';
import type { Reducer } from './reducer';

/** The reducers compiled into the app; user reducers (BATCH_TASKS_DIR) may not take these names. */
export const BUILT_IN_REDUCERS: readonly Reducer[] = [
  summarizeReducer,
  countReducer,
  sumReducer,
  minReducer,
  maxReducer,
  meanReducer,
  histogramReducer,
  topKReducer,
  concatReducer,
] as readonly Reducer[];

export const BUILT_IN_REDUCER_NAMES: readonly string[] = BUILT_IN_REDUCERS.map((r) => r.name);
