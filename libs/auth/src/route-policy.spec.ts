import { describe, expect, it } from 'vitest';
import { accessFor } from './route-policy';

const open = { openHealth: true, openMetrics: true };

describe('accessFor (on matched route patterns)', () => {
  it('maps each route family to its scope', () => {
    expect(accessFor('GET', '/v2/health/ready', open)).toBe('public');
    expect(accessFor('GET', '/metrics', open)).toBe('public');
    expect(accessFor('GET', '/v2', open)).toBe('infer');
    expect(accessFor('POST', '/v2/models/:model/infer', open)).toBe('infer');
    expect(accessFor('POST', '/v2/repository/index', open)).toBe('admin');
    expect(accessFor('POST', '/v2/repository/models/:model/unload', open)).toBe('admin');
    expect(accessFor('POST', '/v1/batches', open)).toBe('batch');
    expect(accessFor('GET', '/v1/batches/:id/results', open)).toBe('batch');
    expect(accessFor('POST', '/v1/files', open)).toBe('batch');
    expect(accessFor('GET', '/v1/files/:id/content', open)).toBe('batch');
    expect(accessFor('DELETE', '/v1/files/:id', open)).toBe('batch');
    expect(accessFor('GET', '/admin/api/devices', open)).toBe('admin');
    expect(accessFor('POST', '/admin/api/batches/:id/:action', open)).toBe('admin');
    expect(accessFor('GET', '/admin', open)).toBe('public');
    expect(accessFor('GET', '/admin/:file', open, { file: 'app.js' })).toBe('public');
    expect(accessFor('GET', '/admin/:file', open, { file: 'panel.min.css' })).toBe('public');
  });

  it('closes matched routes it does not know, and asks only for a key on unmatched ones', () => {
    expect(accessFor('GET', '/something-new', open)).toBe('admin');
    expect(accessFor('GET', '/v2repository', open)).toBe('admin');
    expect(accessFor('GET', '/v1/batchesX', open)).toBe('admin');
    expect(accessFor('GET', '/v1/filesX', open)).toBe('admin');
    expect(accessFor('POST', '/admin', open)).toBe('admin');
    expect(accessFor('POST', '/admin/:file', open, { file: 'app.js' })).toBe('admin');
    expect(accessFor('GET', '/admin/:file', open, { file: '../panel-assets.js' })).toBe('admin');
    expect(accessFor('GET', '/admin/:file', open, { file: '.swcrc' })).toBe('admin');
    expect(accessFor('GET', '/admin/:file', open)).toBe('admin');
    expect(accessFor('GET', undefined, open)).toBe('authenticated');
    expect(accessFor('GET', '/v2/health/live', { openHealth: false, openMetrics: true })).toBe('infer');
    expect(accessFor('GET', '/metrics', { openHealth: true, openMetrics: false })).toBe('admin');
  });
});
