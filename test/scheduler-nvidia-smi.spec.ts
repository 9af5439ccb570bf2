import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverDevices, migMemoryMiB, NvidiaSmiProbe, parseMigProfile, parseNvidiaSmi, parseNvidiaSmiList, StaticGpuProbe } from '@tandem/scheduler';

const FIXTURES = join(process.cwd(), 'test/fixtures/nvidia-smi');
// Printed by test/fixtures/fake-nvidia-smi/nvidia-smi (real formats; see the README there),
// except odd-values.csv, hand-written edge cases, and h200-real.*, real nvidia-smi output from
// one H200 (driver 580.159.04, MIG disabled).
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const FAKE = join(process.cwd(), 'test/fixtures/fake-nvidia-smi/nvidia-smi');

const GPU0 = 'GPU-5a3c9e0b-6f1d-4c2e-9a7b-0d1e2f3a4b5c';
const MIG0 = 'MIG-9e80e24b-6f5d-4c2e-9a7b-0d1e2f7a4b5c';
const H200 = 'GPU-6420f224-0471-edd8-c367-79c04b78a46b';

describe('nvidia-smi --query-gpu parsing', () => {
  it('parses the 8×H100 node: GPU 0 in MIG mode reports no utilization', () => {
    const r = parseNvidiaSmi(fixture('h100x8-mig.query.csv'));
    expect(r.warnings).toEqual([]);
    expect(r.gpus).toHaveLength(8);
    expect(r.gpus[0]).toEqual({
      index: 0,
      uuid: GPU0,
      name: 'NVIDIA H100 80GB HBM3',
      memoryTotalMiB: 81559,
      memoryUsedMiB: 62,
      utilizationPct: null,
      migMode: 'Enabled',
    });
    expect(r.gpus[2]).toMatchObject({ index: 2, memoryUsedMiB: 1024, utilizationPct: 37, migMode: 'Disabled' });
  });

  it('parses the real H200 capture (driver 580.159.04): one GPU, 143 771 MiB, MIG disabled', () => {
    const r = parseNvidiaSmi(fixture('h200-real.query.csv'));
    expect(r.warnings).toEqual([]);
    expect(r.gpus).toEqual([{ index: 0, uuid: H200, name: 'NVIDIA H200', memoryTotalMiB: 143771, memoryUsedMiB: 0, utilizationPct: 0, migMode: 'Disabled' }]);
  });

  it('handles CRLF, blank lines, [N/A]/[Not Supported] and a comma inside the product name', () => {
    const r = parseNvidiaSmi(fixture('odd-values.csv'));
    expect(r.gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-3c4d5e6f-7081-4923-ab4c-5d6e7f809a1b',
        name: 'NVIDIA GeForce RTX 4090',
        memoryTotalMiB: 24564,
        memoryUsedMiB: 1532,
        utilizationPct: 12,
        migMode: null,
      },
      {
        index: 1,
        uuid: 'GPU-4d5e6f70-8192-4a34-bc5d-6e7f8091a2b3',
        name: 'Tesla T4',
        memoryTotalMiB: null,
        memoryUsedMiB: null,
        utilizationPct: null,
        migMode: null,
      },
      { index: 2, uuid: null, name: 'NVIDIA RTX A6000, Ada Generation', memoryTotalMiB: 49140, memoryUsedMiB: 0, utilizationPct: 0, migMode: null },
    ]);
    expect(r.warnings).toEqual(['GPU 1: memory.total is "[N/A]"; registering 0 MiB']);
  });

  it('turns driver error text into a warning, not a crash', () => {
    const r = parseNvidiaSmi(fixture('driver-error.txt'));
    expect(r.gpus).toEqual([]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^unparseable line: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
  });

  it('a GPU off the bus: its error line is a warning, the other rows are read', () => {
    const r = parseNvidiaSmi(fixture('h100x8-gpu-lost.query.csv'));
    expect(r.gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 6, 7]);
    expect(r.warnings).toEqual([
      'unparseable line: Unable to determine the device handle for GPU0000:AB:00.0: GPU is lost.  Reboot the system to recover this GPU',
    ]);
  });

  it('tolerates units, a header line and duplicate indices', () => {
    const r = parseNvidiaSmi(
      'index, uuid, name, memory.total [MiB], memory.used [MiB], utilization.gpu [%], mig.mode.current\n0, GPU-a, X, 100 MiB, 5 MiB, 7 %, Disabled\n0, GPU-b, Y, 1, 1, 1, Disabled\n',
    );
    expect(r.gpus).toEqual([{ index: 0, uuid: 'GPU-a', name: 'X', memoryTotalMiB: 100, memoryUsedMiB: 5, utilizationPct: 7, migMode: 'Disabled' }]);
    expect(r.warnings).toEqual(['duplicate GPU index 0; keeping the first']);
  });
});

describe('nvidia-smi -L parsing', () => {
  it('lists GPUs and the MIG devices under GPU 0 with profile, index and UUID', () => {
    const r = parseNvidiaSmiList(fixture('h100x8-mig.list.txt'));
    expect(r.warnings).toEqual([]);
    expect(r.gpus.map((g) => [g.index, g.mig.length])).toEqual([
      [0, 3],
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 0],
      [5, 0],
      [6, 0],
      [7, 0],
    ]);
    expect(r.gpus[0]).toMatchObject({ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: GPU0 });
    expect(r.gpus[0]!.mig.map((m) => [m.index, m.profile])).toEqual([
      [0, '3g.40gb'],
      [1, '2g.20gb'],
      [2, '2g.20gb'],
    ]);
    expect(r.gpus[0]!.mig[0]!.uuid).toBe(MIG0);
  });

  it('parses the real H200 -L capture: one whole GPU, no MIG devices', () => {
    const r = parseNvidiaSmiList(fixture('h200-real.list.txt'));
    expect(r.warnings).toEqual([]);
    expect(r.gpus).toEqual([{ index: 0, name: 'NVIDIA H200', uuid: H200, mig: [] }]);
  });

  it('reads the R450-era MIG line and reports what it cannot read', () => {
    const r = parseNvidiaSmiList(
      'GPU 0: A100-SXM4-40GB (UUID: GPU-e91a5e5a-4a2f-4a1c-8f0e-1b2c3d4e5f60)\n  MIG 1g.5gb Device 0: (UUID: MIG-GPU-e91a5e5a-4a2f-4a1c-8f0e-1b2c3d4e5f60/1/0)\r\n' +
        fixture('h100x8-gpu-lost.list.txt')
          .split('\n')
          .find((l) => l.startsWith('Unable'))!,
    );
    expect(r.gpus[0]!.mig).toEqual([{ index: 0, profile: '1g.5gb', uuid: 'MIG-GPU-e91a5e5a-4a2f-4a1c-8f0e-1b2c3d4e5f60/1/0' }]);
    expect(r.warnings).toEqual([expect.stringMatching(/^unparseable -L line: Unable to determine the device handle for GPU0000:AB:00.0: GPU is lost/)]);
  });

  it('sizes MIG devices from their profile: compute slices, and memory a little under the name', () => {
    expect(parseMigProfile('3g.40gb')).toEqual({ computeSlices: 3, memoryGb: 40 });
    expect(parseMigProfile('1g.10gb+me')).toEqual({ computeSlices: 1, memoryGb: 10 });
    expect(parseMigProfile('1c.3g.40gb')).toEqual({ computeSlices: 1, memoryGb: 40 });
    expect(parseMigProfile('big')).toBeNull();
    // Real H100 1g.10gb instances report 9 728 MiB, 3g.40gb 40 192 MiB: never schedule more than that.
    expect(migMemoryMiB({ computeSlices: 1, memoryGb: 10 }, 81559)).toBe(9728);
    expect(migMemoryMiB({ computeSlices: 3, memoryGb: 40 }, 81559)).toBeLessThanOrEqual(40192);
    expect(migMemoryMiB({ computeSlices: 7, memoryGb: 80 }, 70000)).toBe(70000);
  });
});

describe('GPU probe (the fake nvidia-smi) and discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-smi-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** The fake in one of its failure modes, as a binary of its own. */
  const fakeIn = (mode: string): string => {
    const bin = join(dir, `nvidia-smi-${mode}`);
    writeFileSync(bin, `#!/bin/sh\nFAKE_NVIDIA_SMI_MODE=${mode} exec ${FAKE} "$@"\n`);
    chmodSync(bin, 0o755);
    return bin;
  };
  const discover = (probe: NvidiaSmiProbe | StaticGpuProbe) => discoverDevices({ discoverGpus: true, discoverCpu: false, declared: [] }, probe);

  it('runs the query and -L, and the fixtures are what the fake prints', async () => {
    const bin = join(dir, 'nvidia-smi');
    const log = join(dir, 'args.txt');
    writeFileSync(bin, `#!/bin/sh\necho "$@" >> ${log}\nexec ${FAKE} "$@"\n`);
    chmodSync(bin, 0o755);
    const r = await new NvidiaSmiProbe(bin).probe();
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      '--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,mig.mode.current --format=csv,noheader,nounits',
      '-L',
    ]);
    expect(r).toEqual(await new StaticGpuProbe(fixture('h100x8-mig.query.csv'), fixture('h100x8-mig.list.txt')).probe());
    expect(r.warnings).toEqual([]);
  });

  it('prints the formats of the real H200 capture: query, header and units, -L', () => {
    // Values differ (8×H100 vs one H200); separators, units, spelling and line shape must not.
    const shape = (text: string): string =>
      text
        .replace(/GPU-[0-9a-f-]+/g, 'GPU-<uuid>')
        .replace(/NVIDIA H200|NVIDIA H100 80GB HBM3/g, '<name>')
        .replace(/[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.\d/g, '<bus>')
        .replace(/\d+/g, 'N');
    const gpu0 = (args: string[]): string => {
      const out = execFileSync(FAKE, args, { env: { ...process.env, FAKE_NVIDIA_SMI_MODE: 'no-mig' }, encoding: 'utf8' });
      const lines = out.split('\n');
      const gpu1 = lines.findIndex((l) => /^(GPU )?1[:,]/.test(l)); // the header, if any, and GPU 0 come before
      return `${lines.slice(0, gpu1).join('\n')}\n`;
    };
    const Q = ['--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,mig.mode.current', '--format=csv,noheader,nounits'];
    const H = ['--query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.used,memory.free,utilization.gpu,mig.mode.current', '--format=csv'];
    expect(shape(gpu0(Q))).toBe(shape(fixture('h200-real.query.csv')));
    expect(shape(gpu0(H))).toBe(shape(fixture('h200-real.query-header.csv')));
    expect(shape(gpu0(['-L']))).toBe(shape(fixture('h200-real.list.txt')));
    expect(shape(fixture('h200-real.query.csv'))).toBe('N, GPU-<uuid>, <name>, N, N, N, Disabled\n');
  });

  it('the real H200 capture becomes one whole-GPU device with its 143 771 MiB', async () => {
    const r = await discover(new StaticGpuProbe(fixture('h200-real.query.csv'), fixture('h200-real.list.txt')));
    expect(r.warnings).toEqual([]);
    expect(r.devices).toEqual([
      {
        localId: 'gpu0',
        kind: 'gpu',
        source: 'discovered',
        model: 'NVIDIA H200',
        gpuIndex: 0,
        gpuUuid: H200,
        migMode: 'Disabled',
        parentGpuUuid: null,
        migProfile: null,
        migDeviceIndex: null,
        computeFraction: 1,
        cores: null,
        memoryMiB: 143771,
      },
    ]);
    expect(r.probedGpuUuids).toEqual([H200]);
  });

  it('an 8×H100 node with MIG on GPU 0: 7 whole GPUs and 3 MIG devices, each with its memory and compute', async () => {
    const r = await discover(new NvidiaSmiProbe(FAKE));
    expect(r.warnings).toEqual([]);
    expect(r.devices.map((d) => [d.localId, d.memoryMiB, d.computeFraction])).toEqual([
      ['gpu0-mig0', 38912, 3 / 7],
      ['gpu0-mig1', 19456, 2 / 7],
      ['gpu0-mig2', 19456, 2 / 7],
      ...[1, 2, 3, 4, 5, 6, 7].map((i) => [`gpu${i}`, 81559, 1]),
    ]);
    expect(r.devices[0]).toEqual({
      localId: 'gpu0-mig0',
      kind: 'gpu',
      source: 'discovered',
      model: 'NVIDIA H100 80GB HBM3 MIG 3g.40gb',
      gpuIndex: 0,
      gpuUuid: MIG0,
      migMode: 'Enabled',
      parentGpuUuid: GPU0,
      migProfile: '3g.40gb',
      migDeviceIndex: 0,
      computeFraction: 3 / 7,
      cores: null,
      memoryMiB: 38912,
    });
    expect(r.probedGpuUuids).toHaveLength(8);
    expect(r.probedGpuUuids[0]).toBe(GPU0);
  });

  it("driver not loaded: no GPUs and a warning with nvidia-smi's message and exit code", async () => {
    const r = await discover(new NvidiaSmiProbe(fakeIn('driver-down')));
    expect(r.devices).toEqual([]);
    expect(r.warnings).toEqual([
      expect.stringMatching(/--query-gpu failed \(exit 9\): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/),
    ]);
  });

  it('a GPU lost from the bus: the others register, with warnings naming it', async () => {
    const r = await discover(new NvidiaSmiProbe(fakeIn('gpu-lost')));
    expect(r.devices.map((d) => d.localId)).toEqual(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu6', 'gpu7']);
    expect(r.warnings.filter((w) => /GPU is lost/.test(w)).length).toBeGreaterThanOrEqual(2);
    expect(r.warnings.some((w) => /exit 15/.test(w))).toBe(true);
  });

  it('MIG enabled without MIG devices: that GPU is not schedulable at all, with a warning', async () => {
    const r = await discover(new NvidiaSmiProbe(fakeIn('mig-empty')));
    expect(r.devices.map((d) => d.localId)).toEqual(['gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7']);
    expect(r.warnings).toEqual(['GPU 0 has MIG enabled but no MIG devices: nothing on it is schedulable']);
    expect(r.probedGpuUuids).toContain(GPU0);
  });

  it('-L failing while the query works: a MIG GPU is skipped (its devices are unknown), the rest register', async () => {
    const bin = join(dir, 'smi-no-list');
    writeFileSync(bin, `#!/bin/sh\nif [ "$1" = "-L" ]; then echo "Failed to initialize NVML: Unknown Error"; exit 255; fi\nexec ${FAKE} "$@"\n`);
    chmodSync(bin, 0o755);
    const r = await discover(new NvidiaSmiProbe(bin));
    expect(r.devices.map((d) => d.localId)).toEqual(['gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7']);
    expect(r.warnings).toEqual([
      expect.stringMatching(/-L failed \(exit 255\): Failed to initialize NVML/),
      'unparseable -L line: Failed to initialize NVML: Unknown Error',
      'GPU 0 has MIG enabled but no -L listing: nothing on it is schedulable',
    ]);
  });

  it('a missing nvidia-smi means no GPUs and a warning', async () => {
    const r = await new NvidiaSmiProbe(join(dir, 'absent')).probe();
    expect(r.gpus).toEqual([]);
    expect(r.warnings).toEqual([`${join(dir, 'absent')} not found`]);
  });

  it('combines probed GPUs, the CPU and declared devices; declared ones are labelled and override', async () => {
    const r = await discoverDevices(
      {
        discoverGpus: true,
        discoverCpu: true,
        declared: [
          { kind: 'gpu', index: 1, name: 'Simulated H100', memoryMiB: 81559 },
          { kind: 'gpu', index: 9, name: 'Simulated H100', memoryMiB: 81559, uuid: 'GPU-sim-9' },
        ],
      },
      new StaticGpuProbe(fixture('h100x8-mig.query.csv'), fixture('h100x8-mig.list.txt')),
    );
    const by = new Map(r.devices.map((d) => [d.localId, d]));
    expect([...by.keys()].sort()).toEqual(['cpu', 'gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2', 'gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7', 'gpu9']);
    expect(by.get('gpu2')).toMatchObject({ source: 'discovered', migMode: 'Disabled', memoryMiB: 81559, computeFraction: 1 });
    expect(by.get('gpu1')).toMatchObject({ source: 'declared', model: 'Simulated H100' });
    expect(by.get('gpu9')).toMatchObject({ source: 'declared', gpuUuid: 'GPU-sim-9' });
    expect(by.get('cpu')!.cores).toBeGreaterThanOrEqual(1);
  });
});
