import { hostname } from 'node:os';
import { discoverDevices, type DiscoveryResult } from './inventory/device-discovery';
import type { GpuProbe } from './inventory/gpu-probe';
import type { InventoryRepository } from './ledger/inventory.repository';
import type { SchedulerLogger } from './scheduler.logger';
import type { SchedulerOptions } from './scheduler.options';
import { MILLI } from './scheduler.types';

/** Registers this node and its devices in the ledger, then heartbeats until stopped. */
export class NodeAgent {
  private timer: NodeJS.Timeout | null = null;
  private beating = false;
  private lastDiscovery: DiscoveryResult | null = null;

  constructor(
    private readonly inventory: InventoryRepository,
    private readonly probe: GpuProbe,
    private readonly opts: SchedulerOptions,
    private readonly logger: SchedulerLogger,
  ) {}

  get nodeName(): string {
    return this.opts.nodeName;
  }

  get discovery(): DiscoveryResult | null {
    return this.lastDiscovery;
  }

  async register(): Promise<DiscoveryResult> {
    const found = await discoverDevices(
      { discoverGpus: this.opts.discoverGpus, discoverCpu: this.opts.discoverCpu, declared: this.opts.declaredDevices },
      this.probe,
    );
    for (const w of found.warnings) this.logger.warn({ node: this.opts.nodeName }, `device discovery: ${w}`);
    const p = this.opts.defaultPartition;
    await this.inventory.register({
      name: this.opts.nodeName,
      hostname: hostname(),
      pid: process.pid,
      info: {
        warnings: found.warnings,
        declared: found.devices.filter((d) => d.source === 'declared').length,
        migDevices: found.devices.filter((d) => d.migProfile !== null).length,
      },
      devices: found.devices,
      probedGpuUuids: found.probedGpuUuids,
      defaultPartition: { onlineMilli: Math.round(p.online * MILLI), batchMilli: Math.round(p.batch * MILLI), batchMayBorrow: p.batchMayBorrow },
    });
    this.lastDiscovery = found;
    this.logger.info({ node: this.opts.nodeName, devices: found.devices.map((d) => `${d.localId}(${d.kind},${d.source})`) }, 'scheduler node registered');
    return found;
  }

  async start(): Promise<void> {
    await this.register();
    this.timer = setInterval(() => void this.beat(), this.opts.heartbeatMs);
    this.timer.unref();
  }

  async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      if (!(await this.inventory.heartbeat(this.opts.nodeName))) await this.register();
    } catch (err) {
      this.logger.warn({ err }, 'scheduler heartbeat failed');
    } finally {
      this.beating = false;
    }
  }

  /** Graceful exit: the node is `left` (not `lost`), so its devices stop taking work at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.inventory.markLeft(this.opts.nodeName, process.pid, hostname()).catch(() => undefined);
  }
}
