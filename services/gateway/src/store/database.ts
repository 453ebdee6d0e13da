/**
 * Opens the gateway's database: PostgreSQL when a URL is given (several gateway replicas share it),
 * else one SQLite file in the data directory. Migrations run before anything else touches it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, SqliteDialect, type KyselyConfig } from 'kysely';
import pg from 'pg';
import { migrateToLatest, MIGRATIONS } from './migrations.js';
import type { Tables } from './tables.js';

export type Db = Kysely<Tables>;

export interface DatabaseOptions {
  /** PostgreSQL connection URL; SQLite is used when absent. */
  readonly databaseUrl?: string;
  /** Directory holding `streamline.db` (created when missing). */
  readonly dataDir?: string;
  /** Told the SQL of every query sent (Kysely's log hook): tests count queries with it. */
  readonly onQuery?: (sql: string) => void;
}

export interface Database {
  readonly db: Db;
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the data lives, for logs (never includes a password). */
  readonly description: string;
  /** Resolves when the database answers a query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const SQLITE_FILE = 'streamline.db';
const INT8_OID = 20;

/** `migrations`: the schema history to bring the database to; all of it unless a test opens one at an older version. */
export async function openDatabase(options: DatabaseOptions, migrations = MIGRATIONS): Promise<Database> {
  const log = options.onQuery ? queryLog(options.onQuery) : undefined;
  const database = options.databaseUrl ? openPostgres(options.databaseUrl, log) : openSqlite(options.dataDir ?? '.streamline', log);
  try {
    await migrateToLatest(database.db, migrations);
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}

function queryLog(onQuery: (sql: string) => void): KyselyConfig['log'] {
  return (event) => {
    if (event.level === 'query') onQuery(event.query.sql);
  };
}

function openSqlite(dataDir: string, log?: KyselyConfig['log']): Database {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, SQLITE_FILE);
  const db = new Kysely<Tables>({
    dialect: new SqliteDialect({
      database: () => {
        const connection = new SQLite(file);
        connection.pragma('journal_mode = WAL');
        connection.pragma('foreign_keys = ON'); // off by default in SQLite; the schema's cascades need it
        connection.pragma('busy_timeout = 5000');
        return Promise.resolve(withStatementCache(connection));
      },
    }),
    log,
  });
  return wrap(db, 'sqlite', `sqlite ${file}`);
}

/** Prepared statements kept per SQL text (Kysely's driver prepares each query anew): at most this many. */
export const SQLITE_STATEMENT_CACHE = 256;

/**
 * The connection as Kysely's SQLite driver sees it (it calls `prepare` and `close` only), with its
 * prepared statements reused by SQL text: the queries are generated from a fixed set of builders, so a
 * few dozen texts cover everything, and preparing was the largest single cost of a `plan(id)` read.
 * The least recently used statement is dropped past SQLITE_STATEMENT_CACHE; a statement still being
 * iterated (a streamed query) is never handed out twice: a fresh one is prepared instead.
 */
export function withStatementCache(connection: SQLite.Database, size = SQLITE_STATEMENT_CACHE): SQLite.Database {
  const statements = new Map<string, SQLite.Statement>();
  const prepare = (source: string): SQLite.Statement => {
    const cached = statements.get(source);
    if (cached && !cached.busy) {
      statements.delete(source);
      statements.set(source, cached);
      return cached;
    }
    const statement = connection.prepare(source);
    if (!cached) {
      statements.set(source, statement);
      if (statements.size > size) statements.delete(statements.keys().next().value!);
    }
    return statement;
  };
  return new Proxy(connection, {
    get(target, property) {
      if (property === 'prepare') return prepare;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function openPostgres(url: string, log?: KyselyConfig['log']): Database {
  const pool = new pg.Pool({
    connectionString: url,
    // bigint columns hold parameter counts, which stay below 2^53: numbers, not pg's default strings
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
  });
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }), log });
  const redacted = (() => {
    try {
      const parsed = new URL(url);
      if (parsed.password) parsed.password = '***';
      return parsed.toString();
    } catch {
      return 'postgres';
    }
  })();
  return wrap(db, 'postgres', `postgres ${redacted}`);
}

function wrap(db: Db, dialect: Database['dialect'], description: string): Database {
  let closed: Promise<void> | null = null;
  return {
    db,
    dialect,
    description,
    async ping() {
      await sql`select 1`.execute(db);
    },
    close() {
      closed ??= db.destroy();
      return closed;
    },
  };
}
