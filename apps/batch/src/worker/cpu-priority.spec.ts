import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { autogroupOf, HELPER_NICE, lowerHelperThreads, lowerSessionWeight } from './cpu-priority';

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

describe('lowerSessionWeight (the batch session’s weight against online’s, Linux autogroups)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => void child?.kill('SIGKILL'));

  const idleNode = async (detached: boolean): Promise<number> => {
    child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'], detached });
    await new Promise((r) => child!.stdout!.once('data', r));
    return child.pid!;
  };

  it('gives the session a process leads (as npm start starts each app) the given weight', async () => {
    const pid = await idleNode(true);
    expect(autogroupOf(pid).nice).toBe(0);
    expect(lowerSessionWeight(19, pid)).toEqual({ applied: true });
    expect(autogroupOf(pid)).toEqual({ group: autogroupOf(pid).group, nice: 19 });
    expect(autogroupOf(pid).group).not.toBe(autogroupOf(process.pid).group);
  });

  it('leaves a session it does not lead alone (a batch app started from a shell or a test runner)', async () => {
    const pid = await idleNode(false);
    const before = autogroupOf(process.pid);
    expect(autogroupOf(pid)).toEqual(before); // the runner's session
    const r = lowerSessionWeight(19, pid);
    expect(r.applied).toBe(false);
    expect(r).toMatchObject({ reason: expect.stringContaining('not a session leader') });
    expect(autogroupOf(pid)).toEqual(before);
  });
});
