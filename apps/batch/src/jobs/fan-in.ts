import type { FanIn } from '../batches/chunk.repository';
import { findReducer } from '../reducers/reducer.registry';

/** The batch's fan-in: combines its done chunks' partials with its reducer, then finalizes. */
export function fanInOf(reducerName: string): FanIn {
  return (partials) => {
    const reducer = findReducer(reducerName);
    if (!reducer) throw new Error(`unknown reducer ${reducerName}`);
    let acc = reducer.empty();
    for (const p of partials) acc = reducer.combine(acc, p);
    return reducer.finalize(acc);
  };
}
