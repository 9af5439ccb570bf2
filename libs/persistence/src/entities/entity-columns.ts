import { getMetadataArgsStorage } from 'typeorm';

type EntityClass<E> = new () => E;
/** The property names of an entity's columns (its data, not its methods). */
export type ColumnKey<E> = { [K in keyof E]: E[K] extends (...args: never[]) => unknown ? never : K }[keyof E] & string;

const cache = new Map<EntityClass<unknown>, Map<string, string>>();

/** property name → column name, from the entity's decorators (TypeORM's default naming: the property name). */
function columnMap<E>(entity: EntityClass<E>): Map<string, string> {
  let m = cache.get(entity);
  if (!m) {
    m = new Map(
      getMetadataArgsStorage()
        .filterColumns(entity)
        .map((c) => [c.propertyName, c.options.name ?? c.propertyName]),
    );
    if (m.size === 0) throw new Error(`${entity.name} declares no columns`);
    cache.set(entity, m);
  }
  return m;
}

/**
 * The SELECT list that reads rows shaped like the entity (`group_id AS "groupId", …`), so raw
 * SQL and the entity that migrations are generated from describe a table once. `only` picks
 * some columns (a hot query reading less); `alias` qualifies them (`a.group_id`).
 */
export function selectColumns<E, K extends ColumnKey<E> = ColumnKey<E>>(entity: EntityClass<E>, opts: { alias?: string; only?: readonly K[] } = {}): string {
  const m = columnMap(entity);
  const keys: readonly string[] = opts.only ?? [...m.keys()];
  const q = opts.alias ? `${opts.alias}.` : '';
  return keys
    .map((k) => {
      const col = m.get(k);
      if (col === undefined) throw new Error(`${entity.name} has no column for "${k}"`);
      return col === k && k === k.toLowerCase() ? `${q}${col}` : `${q}${col} AS "${k}"`;
    })
    .join(', ');
}
