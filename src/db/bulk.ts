import { CompiledQuery } from 'kysely';

import { bindable } from './database.js';
import type { Capabilities } from './database.js';
import type { Executor } from './transaction.js';

export type ColumnType = 'bigint' | 'integer' | 'text' | 'boolean';

export interface BulkUpdate<Row> {
  readonly table: string;
  /** The key column, present in both the table and each row. */
  readonly key: string & keyof Row;
  /** Every column carried by the rows (key included), with its SQL type. */
  readonly columns: Readonly<Record<string & keyof Row, ColumnType>>;
  /** Target column → SQL expression over `t.<column>` (the table) and `v.<column>` (the row). Trusted text. */
  readonly set: Readonly<Record<string, string>>;
  /** Extra condition, e.g. `t.status = v.expected_status`: the compare half of compare-and-set. */
  readonly where?: string;
}

/**
 * Statement text by spec and row count. The hot statements repeat with the
 * same shapes, and building them through the query builder node by node cost
 * more than running them.
 */
const statements = new WeakMap<object, Map<string, string>>();

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
    const parameters: unknown[] = [];
    for (const row of chunk) {
      for (const name of names) {
        parameters.push(bindable(caps, row[name]));
      }
    }
    const result = await trx.executeQuery(CompiledQuery.raw(statementText(caps, spec, names, chunk.length), parameters));
    changed += Number(result.numAffectedRows ?? 0n);
  }
  return changed;
}

function statementText<Row>(caps: Capabilities, spec: BulkUpdate<Row>, names: readonly string[], rowCount: number): string {
  let byShape = statements.get(spec);
  if (!byShape) statements.set(spec, (byShape = new Map()));
  const shape = `${caps.kind}:${rowCount}`;
  let text = byShape.get(shape);
  if (text === undefined) {
    text = buildStatement(caps, spec, names, rowCount);
    byShape.set(shape, text);
  }
  return text;
}

function buildStatement<Row>(caps: Capabilities, spec: BulkUpdate<Row>, names: readonly string[], rowCount: number): string {
  const q = (name: string) => (caps.kind === 'mysql' ? `\`${name}\`` : `"${name}"`);
  const types = spec.columns as Record<string, ColumnType>;
  let n = 0;
  const placeholder = (name: string) => (caps.castValues ? `$${++n}::${types[name]}` : '?');
  const join = `t.${q(spec.key)} = v.${q(spec.key)}`;
  const target = (column: string) => (caps.unionAllValues ? `t.${q(column)}` : q(column));
  const assignments = Object.entries(spec.set)
    .map(([column, expression]) => `${target(column)} = ${expression}`)
    .join(', ');
  const tuples: string[] = [];
  for (let i = 0; i < rowCount; i++) {
    if (caps.unionAllValues) {
      tuples.push(`SELECT ${names.map((name) => (i === 0 ? `? AS ${q(name)}` : '?')).join(', ')}`);
    } else {
      tuples.push(`(${names.map(placeholder).join(', ')})`);
    }
  }
  if (caps.unionAllValues) {
    // STRAIGHT_JOIN: read the literal rows first and find each by key. Left to itself (stale statistics
    // after a bulk load) MariaDB may scan the whole table and probe the rows instead.
    return `UPDATE (${tuples.join(' UNION ALL ')}) AS v STRAIGHT_JOIN ${q(spec.table)} AS t ON ${join} SET ${assignments}${
      spec.where ? ` WHERE ${spec.where}` : ''
    }`;
  }
  const condition = spec.where ? `${join} AND ${spec.where}` : join;
  return `WITH v (${names.map(q).join(', ')}) AS (VALUES ${tuples.join(', ')}) UPDATE ${q(spec.table)} AS t SET ${assignments} FROM v WHERE ${condition}`;
}

/** `?, ?, ?` (or `$1, $2, $3` on PostgreSQL) for a list of `count` values. */
export function placeholderList(caps: Capabilities, count: number): string {
  return caps.castValues ? Array.from({ length: count }, (_, i) => `$${i + 1}`).join(', ') : Array(count).fill('?').join(', ');
}
