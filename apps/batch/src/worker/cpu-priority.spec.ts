import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { HELPER_NICE, lowerHelperThreads } from './cpu-priority';

/** Each thread's nice value from /proc (field 19 of stat). */
function niceOf(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    out.set(tid, Number(fields[19 - 3]));
  }
  return out;
}

describe('lowerHelperThreads (a batch worker’s V8 helper threads at nice 19)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => void child?.kill('SIGKILL'));

  it('lowers the given threads of a running Node process (all but its main one here), not the others', async () => {
    child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child!.stdout!.once('data', r));
    const pid = child.pid!;
    const before = niceOf(pid);
    expect(before.size).toBeGreaterThan(1); // V8's platform threads
    expect([...before.values()].every((n) => n === 0)).toBe(true);

    const helpers = [...before.keys()].filter((t) => t !== String(pid));
    expect(lowerHelperThreads(helpers)).toBe(helpers.length);
    const after = niceOf(pid);
    expect(after.get(String(pid))).toBe(0); // the main thread keeps its priority
    for (const t of helpers) expect(after.get(t)).toBe(HELPER_NICE);
  });
});
