import { describe, expect, it } from 'vitest';
import { cudaBinding, processGpuEnv, sharedProcessGpus } from './cuda-pinning';
import { configureGpuProcess } from './gpu-process';
import { sessionOptionsFor } from '../session-factory';

const gpu = (deviceId: number, uuid: string | null) => ({ kind: 'cuda' as const, deviceId, uuid, memoryMiB: 20_000 });

describe('CUDA pinning: allocation → what CUDA sees', () => {
  it('a process of its own sees only its device, as CUDA ordinal 0 (MIG by UUID, whole GPUs by UUID or index)', () => {
    expect(cudaBinding(gpu(0, 'MIG-4c5b9b5e-46f4-5c1b-9b53-2c1f0d2a3e11'), { kind: 'own-process' })).toEqual({
      deviceId: 0,
      env: { CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: 'MIG-4c5b9b5e-46f4-5c1b-9b53-2c1f0d2a3e11' },
    });
    expect(cudaBinding(gpu(5, 'GPU-sim-5'), { kind: 'own-process' })).toEqual({
      deviceId: 0,
      env: { CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: 'GPU-sim-5' },
    });
    expect(cudaBinding(gpu(5, null), { kind: 'own-process' })).toEqual({ deviceId: 0, env: { CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: '5' } });
  });

  it('a shared process uses the PCI-bus index, or the position in its own CUDA_VISIBLE_DEVICES', () => {
    expect(cudaBinding(gpu(3, 'GPU-sim-3'), { kind: 'shared' })).toEqual({ deviceId: 3, env: { CUDA_DEVICE_ORDER: 'PCI_BUS_ID' } });
    expect(cudaBinding(gpu(3, 'GPU-sim-3'), { kind: 'shared', visibleDevices: 'GPU-sim-6,GPU-sim-3' }).deviceId).toBe(1);
    expect(cudaBinding(gpu(6, null), { kind: 'shared', visibleDevices: '2, 6' }).deviceId).toBe(1);
    expect(() => cudaBinding(gpu(4, 'GPU-sim-4'), { kind: 'shared', visibleDevices: 'GPU-sim-3' })).toThrow(
      'GPU-sim-4 is not visible to this process (CUDA_VISIBLE_DEVICES=GPU-sim-3)',
    );
  });

  it('refuses a MIG instance in a process that sees more than it (CUDA enumerates one MIG instance per process)', () => {
    const mig = gpu(0, 'MIG-aaaa');
    expect(() => cudaBinding(mig, { kind: 'shared' })).toThrow('MIG instance MIG-aaaa needs a process of its own (CUDA_VISIBLE_DEVICES=MIG-aaaa)');
    expect(() => cudaBinding(mig, { kind: 'shared', visibleDevices: 'MIG-aaaa,MIG-bbbb' })).toThrow(/must be this process's only visible device/);
    expect(cudaBinding(mig, { kind: 'shared', visibleDevices: 'MIG-aaaa' }).deviceId).toBe(0);
  });

  it('a child process for a CPU placement sees no GPU; for a CUDA one, only its own', () => {
    expect(processGpuEnv({ kind: 'cpu', intraOpThreads: 1 })).toEqual({ CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: '' });
    expect(processGpuEnv(gpu(2, 'MIG-x'))).toEqual({ CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: 'MIG-x' });
  });

  it('session options name exactly the bound device, with no CPU provider to fall back to', () => {
    configureGpuProcess({});
    expect(sessionOptionsFor(gpu(3, 'GPU-sim-3'))).toEqual({ executionProviders: [{ name: 'cuda', deviceId: 3 }], graphOptimizationLevel: 'all' });
    configureGpuProcess({ visibleDevices: 'GPU-sim-3' });
    expect(sessionOptionsFor(gpu(3, 'GPU-sim-3'))).toEqual({ executionProviders: [{ name: 'cuda', deviceId: 0 }], graphOptimizationLevel: 'all' });
    configureGpuProcess({ simulated: { msPerBatch: 7, baseMiB: 100 } });
    expect(sessionOptionsFor(gpu(3, 'GPU-sim-3'))).toMatchObject({
      executionProviders: ['cpu'],
      tandemSimulatedCuda: { deviceId: 3, uuid: 'GPU-sim-3', allocationMiB: 20_000, msPerBatch: 7, baseMiB: 100 },
    });
    configureGpuProcess({});
  });

  it('a shared process is placed only on GPUs it can address: never a MIG instance unless pinned to exactly that one', () => {
    expect(sharedProcessGpus(undefined)).toEqual({ mig: 'exclude' });
    expect(sharedProcessGpus('MIG-aaaa')).toEqual({ mig: 'allow', gpus: ['MIG-aaaa'] });
    expect(sharedProcessGpus('MIG-aaaa, MIG-bbbb')).toEqual({ mig: 'exclude', gpus: ['MIG-aaaa', 'MIG-bbbb'] });
    expect(sharedProcessGpus('2,GPU-sim-6')).toEqual({ mig: 'exclude', gpus: ['2', 'GPU-sim-6'] });
    expect(sharedProcessGpus('')).toEqual({ mig: 'exclude', gpus: [] });
    // The constraint and cudaBinding agree: every device the constraint admits binds, every other is refused.
    const devices = [gpu(0, 'MIG-aaaa'), gpu(0, 'MIG-bbbb'), gpu(2, 'GPU-sim-2'), gpu(6, 'GPU-sim-6'), gpu(7, null)];
    for (const visible of [undefined, 'MIG-aaaa', 'MIG-aaaa,MIG-bbbb', '2,GPU-sim-6', '7', '']) {
      const c = sharedProcessGpus(visible);
      for (const d of devices) {
        const mig = d.uuid?.startsWith('MIG-') ?? false;
        const admitted =
          (c.mig === 'allow' || !mig) && (c.gpus === undefined || c.gpus.includes(d.uuid ?? '') || (!mig && c.gpus.includes(String(d.deviceId))));
        const binds = ((): boolean => {
          try {
            cudaBinding(d, { kind: 'shared', ...(visible !== undefined ? { visibleDevices: visible } : {}) });
            return true;
          } catch {
            return false;
          }
        })();
        expect({ visible, device: d.uuid ?? d.deviceId, admitted }).toEqual({ visible, device: d.uuid ?? d.deviceId, admitted: binds });
      }
    }
  });

  it('session options for a process started for its one device (a GPU batch unit) name CUDA ordinal 0, MIG included', () => {
    configureGpuProcess({});
    expect(sessionOptionsFor(gpu(0, 'MIG-aaaa'), { ownProcess: true })).toEqual({
      executionProviders: [{ name: 'cuda', deviceId: 0 }],
      graphOptimizationLevel: 'all',
    });
    configureGpuProcess({ simulated: { msPerBatch: 7, baseMiB: 100 } });
    expect(sessionOptionsFor(gpu(3, 'GPU-sim-3'), { ownProcess: true })).toMatchObject({
      tandemSimulatedCuda: { deviceId: 0, uuid: 'GPU-sim-3', allocationMiB: 20_000 },
    });
    configureGpuProcess({});
  });
});
