import { spawnSync } from 'node:child_process';

/**
 * CPU policy of a unit process. `idle`: Linux SCHED_IDLE (runs only on cycles nothing else
 * wants; `chrt` from util-linux); `inherit`: the parent's nice value.
 */
export type UnitCpuPolicy = 'idle' | 'inherit';

/** Signals to a unit process. */
export interface ProcessControl {
  suspend(): void;
  resume(): void;
  kill(): void;
  /** The unit's own OS process, when it is one (a thread-carried unit has none). */
  readonly processId?: number;
}

const works = new Map<string, boolean>();
/** Whether a util-linux wrapper runs here with these arguments (checked once per command). */
function wrapperWorks(args: readonly string[]): boolean {
  const key = args.join(' ');
  let ok = works.get(key);
  if (ok === undefined) {
    ok = spawnSync(args[0]!, [...args.slice(1), 'true'], { stdio: 'ignore' }).status === 0;
    works.set(key, ok);
  }
  return ok;
}

/** `chrt` if this machine has one that can set SCHED_IDLE, else null (checked once). */
export function schedIdleLauncher(): string | null {
  return wrapperWorks(['chrt', '--idle', '0']) ? 'chrt' : null;
}

/**
 * The command prefix of a unit process: killed with its parent (`setpriv --pdeathsig KILL`: a
 * stopped process cannot notice its parent is gone, and would stay stopped forever), under
 * SCHED_IDLE when asked and possible.
 */
export function unitWrappers(policy: UnitCpuPolicy): string[] {
  const out: string[] = [];
  if (wrapperWorks(['setpriv', '--pdeathsig', 'KILL'])) out.push('setpriv', '--pdeathsig', 'KILL');
  if (policy === 'idle' && schedIdleLauncher()) out.push('chrt', '--idle', '0');
  return out;
}
