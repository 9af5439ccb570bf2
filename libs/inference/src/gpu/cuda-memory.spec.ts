import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { measureDeviceMemory, NVIDIA_SMI_APPS, nvidiaSmiMeter, parseComputeApps, type GpuMemoryMeter } from './cuda-memory';

// Real nvidia-smi output from one H200 (driver 580.159.04): see test/fixtures/nvidia-smi/README.md.
const REAL = join(process.cwd(), 'test/fixtures/nvidia-smi');
const H200 = 'GPU-6420f224-0471-edd8-c367-79c04b78a46b';

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

  it('parses the real H200 capture: pid 461 holds 1542 MiB on the GPU', () => {
    expect(parseComputeApps(readFileSync(join(REAL, 'h200-real.apps.csv'), 'utf8'))).toEqual([{ pid: 461, uuid: H200, usedMiB: 1542 }]);
  });

  it('parses the real idle capture (no process on the GPU: empty output) as no processes', () => {
    const idle = readFileSync(join(REAL, 'h200-real.apps-idle.csv'), 'utf8');
    expect(idle).toBe('');
    expect(parseComputeApps(idle)).toEqual([]);
  });

  it('the meter runs nvidia-smi with NVIDIA_SMI_APPS and reads the real captures: 1542 MiB for pid 461, 0 when not listed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smi-apps-'));
    const path = process.env.PATH;
    try {
      const bin = join(dir, 'nvidia-smi');
      const capture = (name: string): void => writeFileSync(bin, `#!/bin/sh\n[ "$*" = "${NVIDIA_SMI_APPS.join(' ')}" ] || exit 2\ncat ${join(REAL, name)}\n`);
      capture('h200-real.apps.csv');
      chmodSync(bin, 0o755);
      process.env.PATH = `${dir}:${path ?? ''}`;
      expect(await nvidiaSmiMeter.processMiB(461, H200)).toBe(1542);
      expect(await nvidiaSmiMeter.processMiB(462, H200)).toBe(0);
      expect(await nvidiaSmiMeter.processMiB(461, 'GPU-other')).toBe(0);
      capture('h200-real.apps-idle.csv');
      expect(await nvidiaSmiMeter.processMiB(461, H200)).toBe(0);
    } finally {
      process.env.PATH = path;
      rmSync(dir, { recursive: true, force: true });
    }
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
