import type { FanIn } from '../batches/chunk.repository';
import type { ReducerRegistry } from '../reducers/reducer.registry';

/** The batch's fan-in: combines its done chunks' partials with its reducer, then finalizes. */
export function fanInOf(reducers: ReducerRegistry, reducerName: string): FanIn {
  return (partials) => {
    const reducer = reducers.find(reducerName);
    if (!reducer) throw new Error(reducers.whyMissing(reducerName));
    let acc = reducer.empty();
    for (const p of partials) acc = reducer.combine(acc, p);
    return reducer.finalize(acc);
  };
}
