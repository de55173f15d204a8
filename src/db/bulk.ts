import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';

import type { Capabilities } from './database.js';
import type { Executor } from './transaction.js';

export type ColumnType = 'bigint' | 'integer' | 'text' | 'boolean';

export interface BulkUpdate<Row> {
  readonly table: string;
  /** The key column, present in both the table and each row. */
  readonly key: string & keyof Row;
  /** Every column carried by the rows (key included), with its SQL type. */
  readonly columns: Readonly<Record<string & keyof Row, ColumnType>>;
  /** Target column → expression over `t.<column>` (the table) and `v.<column>` (the row). */
  readonly set: Readonly<Record<string, RawBuilder<unknown>>>;
  /** Extra condition, e.g. `t.status = v.expected_status`: the compare half of compare-and-set. */
  readonly where?: RawBuilder<unknown>;
}

/**
 * Updates many rows with different values in one statement per chunk,
 * joining the table to a list of literal rows. Returns the rows changed.
 */
export async function bulkUpdate<Row extends Record<string, unknown>>(
  trx: Executor,
  caps: Capabilities,
  spec: BulkUpdate<Row>,
  rows: readonly Row[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const names = Object.keys(spec.columns) as (string & keyof Row)[];
  const chunkSize = Math.max(1, Math.floor(caps.maxParameters / names.length));
  let changed = 0;
  for (let start = 0; start < rows.length; start += chunkSize) {
    const chunk = rows.slice(start, start + chunkSize);
    const result = await statement(caps, spec, names, chunk).execute(trx);
    changed += Number(result.numAffectedRows ?? 0n);
  }
  return changed;
}

function value(caps: Capabilities, type: ColumnType, raw: unknown): RawBuilder<unknown> {
  const bound = typeof raw === 'boolean' && caps.kind !== 'postgres' ? Number(raw) : raw;
  return caps.castValues ? sql`${bound}::${sql.raw(type)}` : sql`${bound}`;
}

function statement<Row extends Record<string, unknown>>(
  caps: Capabilities,
  spec: BulkUpdate<Row>,
  names: (string & keyof Row)[],
  rows: readonly Row[],
): RawBuilder<unknown> {
  const table = sql.table(spec.table);
  const join = sql`t.${sql.ref(spec.key)} = v.${sql.ref(spec.key)}`;
  const condition = spec.where ? sql`${join} AND ${spec.where}` : join;
  const target = (column: string) => (caps.unionAllValues ? sql`t.${sql.ref(column)}` : sql.ref(column));
  const assignments = sql.join(
    Object.entries(spec.set).map(([column, expression]) => sql`${target(column)} = ${expression}`),
  );

  if (caps.unionAllValues) {
    const selects = rows.map((row, index) =>
      index === 0
        ? sql`SELECT ${sql.join(names.map((n) => sql`${value(caps, spec.columns[n], row[n])} AS ${sql.ref(n)}`))}`
        : sql`SELECT ${sql.join(names.map((n) => value(caps, spec.columns[n], row[n])))}`,
    );
    return sql`UPDATE ${table} AS t JOIN (${sql.join(selects, sql` UNION ALL `)}) AS v ON ${join} SET ${assignments}${
      spec.where ? sql` WHERE ${spec.where}` : sql``
    }`;
  }
  const tuples = rows.map((row) => sql`(${sql.join(names.map((n) => value(caps, spec.columns[n], row[n])))})`);
  return sql`WITH v (${sql.join(names.map((n) => sql.ref(n)))}) AS (VALUES ${sql.join(tuples)}) UPDATE ${table} AS t SET ${assignments} FROM v WHERE ${condition}`;
}
