import { concatReducer, histogramReducer } from './collection.reducers';
import { countReducer, maxReducer, meanReducer, minReducer, sumReducer, summarizeReducer, topKReducer } from './numeric.reducers';
import type { Reducer } from './reducer';

const ALL: readonly Reducer[] = [
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

const BY_NAME = new Map(ALL.map((r) => [r.name, r]));

export const REDUCER_NAMES = ALL.map((r) => r.name);

export function findReducer(name: string): Reducer | undefined {
  return BY_NAME.get(name);
}
