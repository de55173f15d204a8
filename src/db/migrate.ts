import { Migrator } from 'kysely';
import type { MigrationResult } from 'kysely';

import type { Database } from './database.js';
import { MIGRATIONS } from './migrations/index.js';

export interface MigrationState {
  readonly name: string;
  readonly executedAt: Date | null;
}

export function createMigrator(database: Database, migrations = MIGRATIONS): Migrator {
  return new Migrator({
    db: database.db,
    provider: { getMigrations: async () => ({ ...migrations }) },
  });
}

/** Every known migration and when it ran (null: pending). */
export async function migrationStatus(database: Database): Promise<MigrationState[]> {
  const infos = await createMigrator(database).getMigrations();
  return infos.map((info) => ({ name: info.name, executedAt: info.executedAt ?? null }));
}

export async function pendingMigrations(database: Database): Promise<string[]> {
  return (await migrationStatus(database)).filter((m) => m.executedAt === null).map((m) => m.name);
}

function unwrap(outcome: { error?: unknown; results?: MigrationResult[] }): MigrationResult[] {
  if (outcome.error) {
    const failed = outcome.results?.find((r) => r.status === 'Error');
    const error = outcome.error instanceof Error ? outcome.error : new Error(String(outcome.error));
    throw new Error(`Migration ${failed?.migrationName ?? ''} failed: ${error.message}`.replace('  ', ' '), { cause: error });
  }
  return outcome.results ?? [];
}

/** Runs one migration at a time, `steps` times or until there is none left. Returns the names. */
async function stepwise(steps: number, step: () => Promise<{ error?: unknown; results?: MigrationResult[] }>): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < steps; i++) {
    const results = unwrap(await step());
    if (results.length === 0) break;
    names.push(...results.map((r) => r.migrationName));
  }
  return names;
}

/** Applies pending migrations (all, or the next `steps`). Returns the names applied. */
export async function migrateUp(database: Database, steps?: number): Promise<string[]> {
  const migrator = createMigrator(database);
  if (steps === undefined) return unwrap(await migrator.migrateToLatest()).map((r) => r.migrationName);
  return stepwise(steps, () => migrator.migrateUp());
}

/** Reverts the last `steps` migrations. Returns the names reverted. */
export async function migrateDown(database: Database, steps = 1): Promise<string[]> {
  const migrator = createMigrator(database);
  return stepwise(steps, () => migrator.migrateDown());
}
