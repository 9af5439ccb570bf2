import { describe, expect, it } from 'vitest';
import { assertJobCatalogue, chunkJobId, JOB_NAMES, parseChunkJob } from './job-catalogue';

describe('job catalogue', () => {
  it('passes its startup check', () => {
    expect(() => assertJobCatalogue()).not.toThrow();
  });

  it('parses chunk payloads and rejects anything else', () => {
    const id = '0b4e2a0e-1f0b-4a8e-9a5e-2f7c3d1e9b10';
    expect(parseChunkJob(JOB_NAMES.chunk, { batchId: id, chunk: 3 })).toEqual({ batchId: id, chunk: 3 });
    expect(() => parseChunkJob('other', { batchId: id, chunk: 3 })).toThrow(/unknown job name/);
    expect(() => parseChunkJob(JOB_NAMES.chunk, { batchId: 'x', chunk: 3 })).toThrow(/malformed/);
    expect(() => parseChunkJob(JOB_NAMES.chunk, { batchId: id, chunk: -1 })).toThrow(/malformed/);
    expect(() => parseChunkJob(JOB_NAMES.chunk, null)).toThrow(/malformed/);
  });

  it('job ids are deterministic and free of ":"', () => {
    expect(chunkJobId('abc', 7)).toBe('abc_7');
  });
});
