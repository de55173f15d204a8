import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';

import { CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Dialect, Driver, Kysely, QueryResult } from 'kysely';

/**
 * SQLite on a worker thread. better-sqlite3 is synchronous: on the main
 * thread every statement, and every commit's fsync, would stall all HTTP
 * traffic. Here the event loop only posts a message and awaits the answer;
 * the worker owns the single connection and its prepared statements.
 */

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const statements = new Map();
let db;
try {
  db = new Database(workerData.path);
  for (const pragma of workerData.pragmas) db.pragma(pragma);
  // SQLite's own lower() folds ASCII only; name search must fold all of Unicode, as on PostgreSQL and MySQL.
  db.function('lower', { deterministic: true }, (value) => (typeof value === 'string' ? value.toLowerCase() : value));
  parentPort.postMessage({ id: 0 });
} catch (error) {
  parentPort.postMessage({ id: 0, error: { message: error.message, code: error.code } });
}
parentPort.on('message', ({ id, sql, params, begin }) => {
  if (sql === null) {
    db && db.close();
    parentPort.postMessage({ id });
    return;
  }
  if (sql === 'rollback' && !db.inTransaction) {
    // The transaction never began (its BEGIN failed, e.g. SQLITE_BUSY): nothing to undo.
    parentPort.postMessage({ id, changes: 0, lastInsertRowid: 0 });
    return;
  }
  try {
    if (begin) db.exec('BEGIN IMMEDIATE');
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      if (statements.size >= ${256}) statements.delete(statements.keys().next().value);
      statements.set(sql, statement);
    }
    if (statement.reader) {
      parentPort.postMessage({ id, rows: statement.all(params) });
    } else {
      const { changes, lastInsertRowid } = statement.run(params);
      parentPort.postMessage({ id, changes, lastInsertRowid });
    }
  } catch (error) {
    parentPort.postMessage({ id, error: { message: error.message, code: error.code } });
  }
});
`;

interface Reply {
  readonly id: number;
  readonly rows?: unknown[];
  readonly changes?: number;
  readonly lastInsertRowid?: number | bigint;
  readonly error?: { message: string; code?: string };
}

/** An error from the worker, with the driver's code (SQLITE_BUSY, …) kept for classification. */
export class SqliteError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'SqliteError';
  }
}

class WorkerChannel {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (reply: Reply) => void>();
  private nextId = 1;

  constructor(path: string, pragmas: readonly string[]) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, pragmas, module } });
    this.worker.on('message', (reply: Reply) => {
      const settle = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      settle?.(reply);
    });
    this.worker.on('error', (error) => this.failAll(error.message));
    this.worker.on('exit', () => this.failAll('The SQLite worker exited'));
  }

  /** Resolves once the database is open (rejects with the reason it could not be). */
  opened(): Promise<void> {
    return this.call(0, undefined, undefined).then(() => undefined);
  }

  /** Runs one statement; with `begin`, opens a transaction first (saving a round trip). */
  send(sql: string | null, params: readonly unknown[] = [], begin = false): Promise<Reply> {
    return this.call(this.nextId++, sql, params, begin);
  }

  private call(id: number, sql: string | null | undefined, params: readonly unknown[] | undefined, begin = false): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, (reply) =>
        reply.error ? reject(new SqliteError(reply.error.message, reply.error.code)) : resolve(reply),
      );
      this.worker.ref();
      if (sql !== undefined) this.worker.postMessage({ id, sql, params, begin });
    });
  }

  private failAll(message: string): void {
    for (const [id, settle] of this.pending) settle({ id, error: { message, code: 'SQLITE_WORKER_GONE' } });
    this.pending.clear();
  }

  async close(): Promise<void> {
    await this.send(null).catch(() => undefined);
    await this.worker.terminate();
  }
}

class WorkerConnection implements DatabaseConnection {
  /** A transaction was begun but not yet sent: it goes out with the first statement. */
  beginPending = false;

  constructor(private readonly channel: WorkerChannel) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const begin = this.beginPending;
    this.beginPending = false;
    const reply = await this.channel.send(query.sql, query.parameters, begin);
    if (reply.rows) return { rows: reply.rows as R[] };
    return {
      rows: [],
      numAffectedRows: reply.changes === undefined ? undefined : BigInt(reply.changes),
      insertId: reply.lastInsertRowid === undefined ? undefined : BigInt(reply.lastInsertRowid),
    };
  }

  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    yield await this.executeQuery<R>(query);
  }
}

/** The single connection, handed out to one caller at a time. */
class SqliteWorkerDriver implements Driver {
  private channel: WorkerChannel | null = null;
  private connection: WorkerConnection | null = null;
  private queue: Promise<void> = Promise.resolve();
  private release: (() => void) | null = null;

  constructor(
    private readonly path: string,
    private readonly pragmas: readonly string[],
  ) {}

  async init(): Promise<void> {
    this.channel = new WorkerChannel(this.path, this.pragmas);
    this.connection = new WorkerConnection(this.channel);
    await this.channel.opened();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.queue;
    let unlock!: () => void;
    this.queue = new Promise((resolve) => (unlock = resolve));
    await previous;
    this.release = unlock;
    return this.connection!;
  }

  async releaseConnection(): Promise<void> {
    const release = this.release;
    this.release = null;
    release?.();
  }

  /** BEGIN IMMEDIATE travels with the transaction's first statement. */
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    (connection as WorkerConnection).beginPending = true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.skipEmpty(connection)) return;
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.skipEmpty(connection)) return;
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  /** A transaction that never ran a statement never began: nothing to end. */
  private skipEmpty(connection: DatabaseConnection): boolean {
    const worker = connection as WorkerConnection;
    const empty = worker.beginPending;
    worker.beginPending = false;
    return empty;
  }

  async destroy(): Promise<void> {
    await this.channel?.close();
  }
}

export class SqliteWorkerDialect implements Dialect {
  constructor(
    private readonly path: string,
    private readonly pragmas: readonly string[],
  ) {}

  createDriver(): Driver {
    return new SqliteWorkerDriver(this.path, this.pragmas);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }

  createAdapter() {
    return new SqliteAdapter();
  }

  createIntrospector(db: Kysely<unknown>) {
    return new SqliteIntrospector(db);
  }
}
