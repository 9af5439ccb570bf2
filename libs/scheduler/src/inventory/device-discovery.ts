import { availableParallelism, cpus, totalmem } from 'node:os';
import type { DeclaredDevice } from '../scheduler.options';
import type { DeviceIdentity } from '../scheduler.types';
import type { GpuProbe } from './gpu-probe';

/** A device as found on (or declared for) this node, before it is written to the ledger. */
export type DiscoveredDevice = DeviceIdentity;

export interface DiscoveryOptions {
  discoverGpus: boolean;
  discoverCpu: boolean;
  declared: DeclaredDevice[];
}

export interface DiscoveryResult {
  devices: DiscoveredDevice[];
  warnings: string[];
}

/**
 * Inventory of this node: probed GPUs, the CPU (capacity = its cores) and declared devices.
 * A declared device with the same local id as a discovered one wins (config overrides the probe).
 */
export async function discoverDevices(opts: DiscoveryOptions, probe: GpuProbe): Promise<DiscoveryResult> {
  const warnings: string[] = [];
  const byId = new Map<string, DiscoveredDevice>();
  if (opts.discoverGpus) {
    const found = await probe.probe();
    warnings.push(...found.warnings);
    for (const g of found.gpus) {
      byId.set(`gpu${g.index}`, {
        localId: `gpu${g.index}`,
        kind: 'gpu',
        source: 'discovered',
        model: g.name,
        gpuIndex: g.index,
        gpuUuid: g.uuid,
        migMode: g.migMode,
        cores: null,
        memoryMiB: g.memoryTotalMiB ?? 0,
      });
    }
  }
  if (opts.discoverCpu) {
    byId.set('cpu', {
      localId: 'cpu',
      kind: 'cpu',
      source: 'discovered',
      model: cpus()[0]?.model.trim() || 'CPU',
      gpuIndex: null,
      gpuUuid: null,
      migMode: null,
      cores: availableParallelism(),
      memoryMiB: Math.floor(totalmem() / (1024 * 1024)),
    });
  }
  for (const d of opts.declared) {
    if (d.kind === 'gpu') {
      const localId = d.id ?? `gpu${d.index}`;
      byId.set(localId, {
        localId,
        kind: 'gpu',
        source: 'declared',
        model: d.name,
        gpuIndex: d.index,
        gpuUuid: d.uuid ?? null,
        migMode: d.mig ?? null,
        cores: null,
        memoryMiB: d.memoryMiB,
      });
    } else {
      const localId = d.id ?? 'cpu';
      byId.set(localId, {
        localId,
        kind: 'cpu',
        source: 'declared',
        model: d.name,
        gpuIndex: null,
        gpuUuid: null,
        migMode: null,
        cores: d.cores,
        memoryMiB: d.memoryMiB,
      });
    }
  }
  return { devices: [...byId.values()], warnings };
}
