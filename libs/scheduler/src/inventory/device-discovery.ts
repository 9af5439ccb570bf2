import { availableParallelism, cpus, totalmem } from 'node:os';
import type { DeclaredDevice } from '../scheduler.options';
import type { DeviceIdentity } from '../scheduler.types';
import type { GpuProbe, GpuProbeResult } from './gpu-probe';
import { migComputeSlices, migMemoryMiB, parseMigProfile } from './nvidia-smi-list.parser';

/** A device as found on (or declared for) this node, before it is written to the ledger. */
export type DiscoveredDevice = DeviceIdentity;

export interface DiscoveryOptions {
  discoverGpus: boolean;
  discoverCpu: boolean;
  declared: DeclaredDevice[];
}

export interface DiscoveryResult {
  devices: DiscoveredDevice[];
  /** UUIDs of the physical GPUs the probe saw (a MIG-enabled one registers only its MIG devices). */
  probedGpuUuids: string[];
  warnings: string[];
}

const NOT_MIG = { parentGpuUuid: null, migProfile: null, migDeviceIndex: null } as const;

/**
 * Schedulable GPU devices from a probe: each GPU, except that a MIG-enabled GPU is replaced by its
 * MIG devices (CUDA enumerates only those there). A MIG-enabled GPU without MIG devices, or whose
 * devices `-L` could not list, contributes nothing, with a warning.
 */
export function gpuDevices(found: GpuProbeResult, warnings: string[]): DiscoveredDevice[] {
  const out: DiscoveredDevice[] = [];
  const listed = new Map(found.listed.map((l) => [l.index, l]));
  for (const g of found.gpus) {
    const whole: DiscoveredDevice = {
      localId: `gpu${g.index}`,
      kind: 'gpu',
      source: 'discovered',
      model: g.name,
      gpuIndex: g.index,
      gpuUuid: g.uuid,
      migMode: g.migMode,
      ...NOT_MIG,
      computeFraction: 1,
      cores: null,
      memoryMiB: g.memoryTotalMiB ?? 0,
    };
    if (g.migMode !== 'Enabled') {
      out.push(whole);
      continue;
    }
    const l = listed.get(g.index);
    if (l && g.uuid && l.uuid !== g.uuid) warnings.push(`GPU ${g.index}: -L names UUID ${l.uuid}, the query ${g.uuid}; using the query's`);
    if (!l || l.mig.length === 0) {
      warnings.push(`GPU ${g.index} has MIG enabled but ${l ? 'no MIG devices' : 'no -L listing'}: nothing on it is schedulable`);
      continue;
    }
    const slices = migComputeSlices(g.name);
    for (const m of l.mig) {
      const size = parseMigProfile(m.profile);
      if (!size) {
        warnings.push(`GPU ${g.index} MIG device ${m.index}: unknown profile "${m.profile}"; skipped`);
        continue;
      }
      out.push({
        localId: `gpu${g.index}-mig${m.index}`,
        kind: 'gpu',
        source: 'discovered',
        model: `${g.name} MIG ${m.profile}`,
        gpuIndex: g.index,
        gpuUuid: m.uuid,
        migMode: 'Enabled',
        parentGpuUuid: g.uuid ?? l.uuid,
        migProfile: m.profile,
        migDeviceIndex: m.index,
        computeFraction: Math.min(1, size.computeSlices / slices),
        cores: null,
        memoryMiB: migMemoryMiB(size, g.memoryTotalMiB),
      });
    }
  }
  return out;
}

/**
 * Inventory of this node: probed GPUs, the CPU (capacity = its cores) and declared devices.
 * A declared device with the same local id as a discovered one wins (config overrides the probe).
 */
export async function discoverDevices(opts: DiscoveryOptions, probe: GpuProbe): Promise<DiscoveryResult> {
  const warnings: string[] = [];
  const byId = new Map<string, DiscoveredDevice>();
  const probedGpuUuids: string[] = [];
  if (opts.discoverGpus) {
    const found = await probe.probe();
    warnings.push(...found.warnings);
    for (const g of found.gpus) if (g.uuid) probedGpuUuids.push(g.uuid);
    for (const d of gpuDevices(found, warnings)) byId.set(d.localId, d);
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
      ...NOT_MIG,
      computeFraction: null,
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
        ...NOT_MIG,
        computeFraction: 1,
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
        ...NOT_MIG,
        computeFraction: null,
        cores: d.cores,
        memoryMiB: d.memoryMiB,
      });
    }
  }
  return { devices: [...byId.values()], probedGpuUuids, warnings };
}
