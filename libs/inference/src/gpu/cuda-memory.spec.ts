import { describe, expect, it } from 'vitest';
import { measureDeviceMemory, parseComputeApps, type GpuMemoryMeter } from './cuda-memory';

describe('device memory per process (nvidia-smi --query-compute-apps)', () => {
  it('parses csv,noheader,nounits rows and skips [N/A] and error lines', () => {
    const out = [
      '2211, GPU-5a3c9e0b-6f1d-4c2e-9a7b-0d1e2f3a4b5c, 1536',
      '2211, GPU-6b4daf1c-6f1e-4c2e-9a7b-0d1e2f3b4b5c, 612',
      '3380, GPU-5a3c9e0b-6f1d-4c2e-9a7b-0d1e2f3a4b5c, [N/A]',
      'No running processes found',
      '',
    ].join('\n');
    expect(parseComputeApps(out)).toEqual([
      { pid: 2211, uuid: 'GPU-5a3c9e0b-6f1d-4c2e-9a7b-0d1e2f3a4b5c', usedMiB: 1536 },
      { pid: 2211, uuid: 'GPU-6b4daf1c-6f1e-4c2e-9a7b-0d1e2f3b4b5c', usedMiB: 612 },
    ]);
  });

  it('measures what the process grew by on the device across a load, one load at a time', async () => {
    let used = 500;
    const meter: GpuMemoryMeter = { processMiB: async (pid, uuid) => (pid === process.pid && uuid === 'GPU-a' ? used : undefined) };
    const order: string[] = [];
    const load = (name: string, mib: number) => async () => {
      order.push(`${name} start`);
      await new Promise((r) => setTimeout(r, 5));
      used += mib;
      order.push(`${name} end`);
      return name;
    };
    const [a, b] = await Promise.all([measureDeviceMemory(meter, 'GPU-a', load('a', 300)), measureDeviceMemory(meter, 'GPU-a', load('b', 700))]);
    expect([a, b]).toEqual([
      { value: 'a', memoryMiB: 300 },
      { value: 'b', memoryMiB: 700 },
    ]);
    expect(order).toEqual(['a start', 'a end', 'b start', 'b end']);
    expect(await measureDeviceMemory(meter, 'GPU-other', load('c', 100))).toEqual({ value: 'c', memoryMiB: undefined });
  });
});
