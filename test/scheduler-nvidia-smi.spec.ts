import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverDevices, NvidiaSmiProbe, parseNvidiaSmi, StaticGpuProbe } from '@tandem/scheduler';

const FIXTURES = join(process.cwd(), 'test/fixtures/nvidia-smi');
// Hand-written in nvidia-smi's exact CSV format (see fixtures/nvidia-smi/README.md), not captured.
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

describe('nvidia-smi parsing', () => {
  it('parses a 4×H100 node', () => {
    const r = parseNvidiaSmi(fixture('h100x4.csv'));
    expect(r.warnings).toEqual([]);
    expect(r.gpus).toHaveLength(4);
    expect(r.gpus[1]).toEqual({
      index: 1,
      uuid: 'GPU-7b4d0f1c-8e2a-4d3f-8b6c-1e2f3a4b5c6d',
      name: 'NVIDIA H100 80GB HBM3',
      memoryTotalMiB: 81559,
      memoryUsedMiB: 1024,
      utilizationPct: 37,
      migMode: 'Disabled',
    });
  });

  it('keeps MIG mode and reads [N/A] utilization as null', () => {
    const r = parseNvidiaSmi(fixture('a100-mig.csv'));
    expect(r.gpus.map((g) => [g.index, g.migMode, g.utilizationPct])).toEqual([
      [0, 'Enabled', null],
      [1, 'Disabled', 0],
    ]);
  });

  it('handles CRLF, blank lines, [N/A]/[Not Supported] and a comma inside the product name', () => {
    const r = parseNvidiaSmi(fixture('odd-values.csv'));
    expect(r.gpus).toEqual([
      { index: 0, uuid: 'GPU-3c4d5e6f-7081-4923-ab4c-5d6e7f809a1b', name: 'NVIDIA GeForce RTX 4090', memoryTotalMiB: 24564, memoryUsedMiB: 1532, utilizationPct: 12, migMode: null },
      { index: 1, uuid: 'GPU-4d5e6f70-8192-4a34-bc5d-6e7f8091a2b3', name: 'Tesla T4', memoryTotalMiB: null, memoryUsedMiB: null, utilizationPct: null, migMode: null },
      { index: 2, uuid: null, name: 'NVIDIA RTX A6000, Ada Generation', memoryTotalMiB: 49140, memoryUsedMiB: 0, utilizationPct: 0, migMode: null },
    ]);
    expect(r.warnings).toEqual(['GPU 1: memory.total is "[N/A]"; registering 0 MiB']);
  });

  it('turns driver error text into a warning, not a crash', () => {
    const r = parseNvidiaSmi(fixture('driver-error.txt'));
    expect(r.gpus).toEqual([]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^unparseable line: NVIDIA-SMI has failed/);
  });

  it('tolerates units, a header line and duplicate indices', () => {
    const r = parseNvidiaSmi('index, uuid, name, memory.total [MiB], memory.used [MiB], utilization.gpu [%], mig.mode.current\n0, GPU-a, X, 100 MiB, 5 MiB, 7 %, Disabled\n0, GPU-b, Y, 1, 1, 1, Disabled\n');
    expect(r.gpus).toEqual([{ index: 0, uuid: 'GPU-a', name: 'X', memoryTotalMiB: 100, memoryUsedMiB: 5, utilizationPct: 7, migMode: 'Disabled' }]);
    expect(r.warnings).toEqual(['duplicate GPU index 0; keeping the first']);
  });
});

describe('GPU probe and discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-smi-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the binary with the documented query and parses its output', async () => {
    const bin = join(dir, 'nvidia-smi');
    const out = join(dir, 'args.txt');
    writeFileSync(bin, `#!/bin/sh\necho "$@" > ${out}\ncat ${join(FIXTURES, 'a100-mig.csv')}\n`);
    chmodSync(bin, 0o755);
    const r = await new NvidiaSmiProbe(bin).probe();
    expect(r.gpus.map((g) => g.uuid)).toEqual(['GPU-1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b', 'GPU-2a3b4c5d-6e7f-4809-9b0c-1d2e3f4a5b6c']);
    expect(readFileSync(out, 'utf8').trim()).toBe(
      '--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,mig.mode.current --format=csv,noheader,nounits',
    );
  });

  it('a missing nvidia-smi means no GPUs and a warning', async () => {
    const r = await new NvidiaSmiProbe(join(dir, 'absent')).probe();
    expect(r.gpus).toEqual([]);
    expect(r.warnings[0]).toMatch(/not found/);
  });

  it('a failing nvidia-smi (driver down) means no GPUs and a warning with its message', async () => {
    const bin = join(dir, 'broken-smi');
    writeFileSync(bin, `#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2\nexit 9\n`);
    chmodSync(bin, 0o755);
    const r = await new NvidiaSmiProbe(bin).probe();
    expect(r.gpus).toEqual([]);
    expect(r.warnings[0]).toMatch(/failed: NVIDIA-SMI has failed/);
  });

  it('combines probed GPUs, the CPU and declared devices; declared ones are labelled and override', async () => {
    const r = await discoverDevices(
      {
        discoverGpus: true,
        discoverCpu: true,
        declared: [
          { kind: 'gpu', index: 1, name: 'Simulated H100', memoryMiB: 81559 },
          { kind: 'gpu', index: 7, name: 'Simulated H100', memoryMiB: 81559, uuid: 'GPU-sim-7' },
        ],
      },
      new StaticGpuProbe(fixture('a100-mig.csv')),
    );
    const by = new Map(r.devices.map((d) => [d.localId, d]));
    expect([...by.keys()].sort()).toEqual(['cpu', 'gpu0', 'gpu1', 'gpu7']);
    expect(by.get('gpu0')).toMatchObject({ source: 'discovered', migMode: 'Enabled', memoryMiB: 81920 });
    expect(by.get('gpu1')).toMatchObject({ source: 'declared', model: 'Simulated H100' });
    expect(by.get('gpu7')).toMatchObject({ source: 'declared', gpuUuid: 'GPU-sim-7' });
    expect(by.get('cpu')!.cores).toBeGreaterThanOrEqual(1);
  });
});
