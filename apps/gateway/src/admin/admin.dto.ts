import { z } from 'zod';

const deviceKind = z.enum(['gpu', 'cpu']);
const name = z.string().min(1).max(200);

export const partitionBody = z
  .object({
    online: z.number().min(0, 'online must be ≥ 0').max(1, 'online must be ≤ 1'),
    batch: z.number().min(0, 'batch must be ≥ 0').max(1, 'batch must be ≤ 1'),
    batchMayBorrow: z.boolean().optional(),
  })
  .strict()
  .refine((p) => p.online + p.batch <= 1 + 1e-9, { message: 'online + batch must be ≤ 1' });

export const allocationBody = z
  .object({
    kind: z.enum(['online', 'batch']),
    share: z.number().gt(0, 'share must be > 0').max(4096),
    memoryMiB: z
      .number()
      .int()
      .min(0)
      .max(64 * 1024 * 1024)
      .optional(),
    deviceKind: deviceKind.optional(),
    nodes: z.array(name).min(1).max(64).optional(),
    devices: z.array(name).min(1).max(64).optional(),
    holder: name.optional(),
    placement: z.enum(['pack', 'spread']).optional(),
    // GPU constraints: MIG instances excluded/only/allowed; GPUs named as CUDA_VISIBLE_DEVICES names them.
    mig: z.enum(['exclude', 'only', 'allow']).optional(),
    gpus: z.array(name).min(1).max(64).optional(),
  })
  .strict();

export const deviceQuery = z.object({ node: name.optional(), kind: deviceKind.optional() }).strict();

export const allocationQuery = z
  .object({
    device: name.optional(),
    holder: name.optional(),
    kind: z.enum(['online', 'batch']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(500),
  })
  .strict();

export const auditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z
      .string()
      .regex(/^\d{1,19}$/, 'before must be an audit entry id')
      .optional(),
  })
  .strict();

export const uuidParam = z.string().uuid('allocation id must be a UUID');

/** Admin bodies are small JSON objects; anything bigger is a mistake or an attack (bootstrap caps every /admin/api route's body at this, as it arrives). */
export const ADMIN_BODY_LIMIT_BYTES = 16 * 1024;
