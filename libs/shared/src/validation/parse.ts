import { z } from 'zod';
import { DomainException } from '../errors/domain.exception';

/**
 * The one request-validation helper of both apps: the value if `schema` accepts it, else a 400
 * `{"error": "invalid <what>: <field>: <problem>; …"}` naming every bad field (a problem with
 * the whole value has no field part).
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what = 'request'): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message));
  throw DomainException.invalid(`invalid ${what}: ${problems.join('; ')}`);
}

/** An integer given as a JSON number or a query-string digit string ("-3", "42"). */
export const intLike = z
  .union([
    z.number(),
    z
      .string()
      .regex(/^-?\d+$/)
      .transform(Number),
  ])
  .pipe(z.number().int());
