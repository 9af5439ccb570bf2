import { describe, expect, it } from 'vitest';
import { SchedulerAllocationEntity } from './scheduler-allocation.entity';
import { SchedulerNodeEntity } from './scheduler-node.entity';
import { selectColumns, type ColumnKey } from './entity-columns';

describe('selectColumns (a raw SELECT list from the entity that migrations come from)', () => {
  it('aliases every snake_case column to its property, in declaration order', () => {
    expect(selectColumns(SchedulerNodeEntity)).toBe(
      'name, status, hostname, pid, registered_at AS "registeredAt", last_heartbeat_at AS "lastHeartbeatAt", info',
    );
  });

  it('qualifies with a table alias and reads only the picked columns', () => {
    expect(selectColumns(SchedulerAllocationEntity, { alias: 'a', only: ['id', 'deviceId', 'memoryMiB', 'createdAt'] })).toBe(
      'a.id, a.device_id AS "deviceId", a.memory_mib AS "memoryMiB", a.created_at AS "createdAt"',
    );
  });

  it('refuses a property that is not a column', () => {
    const bogus = 'nope' as ColumnKey<SchedulerAllocationEntity>;
    expect(() => selectColumns(SchedulerAllocationEntity, { only: [bogus] })).toThrow('SchedulerAllocationEntity has no column for "nope"');
  });
});
