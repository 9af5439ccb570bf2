import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DomainException, parseInput } from '@tandem/shared';
import {
  AllocationService,
  DeviceLedgerService,
  type AllocationGrant,
  type AllocationView,
  type AuditPage,
  type DeviceView,
  type NodeView,
  type PartitionView,
} from '@tandem/scheduler';
import { adminActor } from './admin-actor';
import { allocationBody, allocationQuery, auditQuery, deviceQuery, partitionBody, uuidParam } from './admin.dto';

/** `/admin/api/…`: the device ledger's inventory, partitions, allocations and audit log. */
@Controller('admin/api')
export class SchedulerAdminController {
  constructor(
    private readonly ledger: DeviceLedgerService,
    private readonly allocations: AllocationService,
  ) {}

  @Get('nodes')
  async nodes(): Promise<{ nodes: NodeView[] }> {
    return { nodes: await this.ledger.listNodes() };
  }

  @Get('devices')
  async devices(@Query() q: unknown): Promise<{ devices: DeviceView[] }> {
    return { devices: await this.ledger.listDevices(parseInput(deviceQuery, q, 'query')) };
  }

  @Get('devices/:node/:local')
  device(@Param('node') node: string, @Param('local') local: string): Promise<DeviceView> {
    return this.ledger.getDevice(`${node}/${local}`);
  }

  @Get('partitions')
  async partitions(): Promise<{ partitions: PartitionView[] }> {
    return { partitions: await this.ledger.listPartitions() };
  }

  @Put('devices/:node/:local/partition')
  partition(@Param('node') node: string, @Param('local') local: string, @Body() body: unknown, @Req() req: FastifyRequest): Promise<PartitionView> {
    return this.ledger.setPartition(`${node}/${local}`, parseInput(partitionBody, body, 'partition'), adminActor(req));
  }

  @Post('devices/:node/:local/drain')
  @HttpCode(200)
  drain(@Param('node') node: string, @Param('local') local: string, @Req() req: FastifyRequest): Promise<DeviceView> {
    return this.ledger.setDrained(`${node}/${local}`, true, adminActor(req));
  }

  @Post('devices/:node/:local/undrain')
  @HttpCode(200)
  undrain(@Param('node') node: string, @Param('local') local: string, @Req() req: FastifyRequest): Promise<DeviceView> {
    return this.ledger.setDrained(`${node}/${local}`, false, adminActor(req));
  }

  @Get('allocations')
  async list(@Query() q: unknown): Promise<{ allocations: AllocationView[] }> {
    const f = parseInput(allocationQuery, q, 'query');
    return { allocations: await this.ledger.listAllocations({ deviceId: f.device, holder: f.holder, kind: f.kind, limit: f.limit }) };
  }

  /** A manual reservation, held (and renewed) by this gateway until deleted. */
  @Post('allocations')
  @HttpCode(201)
  async allocate(@Body() body: unknown, @Req() req: FastifyRequest): Promise<AllocationGrant> {
    const r = parseInput(allocationBody, body, 'allocation');
    const lease = await this.allocations.allocate({ ...r, holder: r.holder ?? `${adminActor(req)}@${this.allocations.defaultHolder}` });
    return lease.grant;
  }

  @Delete('allocations/:id')
  async release(@Param('id') id: string): Promise<{ released: number }> {
    const released = await this.allocations.releaseGroup(parseInput(uuidParam, id, 'allocation id'));
    if (released === 0) throw DomainException.notFound(`no allocation "${id}"`);
    return { released };
  }

  @Get('audit')
  audit(@Query() q: unknown): Promise<AuditPage> {
    const f = parseInput(auditQuery, q, 'query');
    return this.ledger.auditLog(f.limit, f.before);
  }
}
