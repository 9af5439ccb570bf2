import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { schedIdleLauncher } from '@tandem/inference';
import { idleHelperThreads } from './cpu-priority';

/** Each thread's scheduling policy from /proc (field 41 of stat: 0 = SCHED_OTHER, 5 = SCHED_IDLE). */
function policies(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    out.set(tid, Number(fields[41 - 3]));
  }
  return out;
}

describe('idleHelperThreads (a batch worker’s V8 helper threads under SCHED_IDLE)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => void child?.kill('SIGKILL'));

  it('puts the given threads of a running Node process (all but its main one here) under SCHED_IDLE', async () => {
    expect(schedIdleLauncher()).toBe('chrt'); // util-linux, on this machine and in CI
    child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child!.stdout!.once('data', r));
    const pid = child.pid!;
    const before = policies(pid);
    expect(before.size).toBeGreaterThan(1); // V8's platform threads
    expect([...before.values()].every((p) => p === 0)).toBe(true);

    const helpers = [...before.keys()].filter((t) => t !== String(pid));
    const n = idleHelperThreads(helpers);
    const after = policies(pid);
    expect(n).toBe(before.size - 1);
    expect(after.get(String(pid))).toBe(0); // the main thread keeps its policy
    for (const [tid, p] of after) if (tid !== String(pid)) expect(p).toBe(5);
  });
});
