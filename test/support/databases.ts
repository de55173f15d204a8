import { randomBytes } from 'node:crypto';

import { createConnection } from 'mysql2/promise';
import pg from 'pg';

import type { DatabaseKind } from '../../src/config.js';

/** The dialects under test: all three unless FLEETPULSE_TEST_DIALECTS narrows them (e.g. "sqlite"). */
export const DIALECTS: readonly DatabaseKind[] = (process.env.FLEETPULSE_TEST_DIALECTS ?? 'sqlite,postgres,mysql')
  .split(',')
  .map((d) => d.trim())
  .filter((d): d is DatabaseKind => d === 'sqlite' || d === 'postgres' || d === 'mysql');

const POSTGRES_ADMIN_URL = process.env.FLEETPULSE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_ADMIN_URL = process.env.FLEETPULSE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface TestDatabase {
  readonly kind: DatabaseKind;
  readonly url: string;
  drop(): Promise<void>;
}

function withDatabase(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh, empty database of its own; `drop()` removes it. SQLite gets a file in a temp folder. */
export async function createTestDatabase(kind: DatabaseKind, { file = false } = {}): Promise<TestDatabase> {
  const name = `fp_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  switch (kind) {
    case 'sqlite': {
      if (!file) return { kind, url: 'sqlite::memory:', drop: async () => {} };
      const { mkdtemp, rm } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      const dir = await mkdtemp(join(tmpdir(), 'fleetpulse-'));
      return { kind, url: `sqlite:${join(dir, 'fleetpulse.sqlite')}`, drop: () => rm(dir, { recursive: true, force: true }) };
    }
    case 'postgres': {
      const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      return {
        kind,
        url: withDatabase(POSTGRES_ADMIN_URL, name),
        async drop() {
          const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
          await client.connect();
          await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await client.end();
        },
      };
    }
    case 'mysql': {
      const admin = await createConnection({ uri: MYSQL_ADMIN_URL });
      await admin.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      await admin.end();
      return {
        kind,
        url: withDatabase(MYSQL_ADMIN_URL, name),
        async drop() {
          const connection = await createConnection({ uri: MYSQL_ADMIN_URL });
          await connection.query(`DROP DATABASE IF EXISTS ${name}`);
          await connection.end();
        },
      };
    }
  }
}
