import { describe, expect, it } from 'vitest';
import { accessFor } from './route-policy';

const open = { openHealth: true, openMetrics: true };

describe('accessFor', () => {
  it('maps each route family to its scope', () => {
    expect(accessFor('GET', '/v2/health/ready', open)).toBe('public');
    expect(accessFor('GET', '/metrics', open)).toBe('public');
    expect(accessFor('GET', '/v2', open)).toBe('infer');
    expect(accessFor('POST', '/v2/models/scorer/infer?x=1', open)).toBe('infer');
    expect(accessFor('POST', '/v2/repository/index', open)).toBe('admin');
    expect(accessFor('POST', '/v1/batches', open)).toBe('batch');
    expect(accessFor('GET', '/admin/api/devices', open)).toBe('admin');
    expect(accessFor('GET', '/admin', open)).toBe('public');
    expect(accessFor('GET', '/admin/app.js', open)).toBe('public');
  });

  it('closes what it does not know, and honours the open-health/metrics switches', () => {
    expect(accessFor('GET', '/something-new', open)).toBe('admin');
    expect(accessFor('POST', '/admin', open)).toBe('admin');
    expect(accessFor('GET', '/admin/../v1/batches', open)).toBe('admin');
    expect(accessFor('GET', '/v2/health/live', { openHealth: false, openMetrics: true })).toBe('infer');
    expect(accessFor('GET', '/metrics', { openHealth: true, openMetrics: false })).toBe('admin');
  });
});
