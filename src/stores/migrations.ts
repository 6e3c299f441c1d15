// The migration registry shared by the SQL units of work: each part (the idempotency store, the
// outbox, your own repositories) registers versioned migrations; no driver and no framework here.
import { createHash } from 'node:crypto';

/** How a migration changes the schema: SQL text, or a function of the migration's transaction. */
export type MigrationChange<Tx> = string | ((tx: Tx) => void | Promise<void>);

export interface Migration<Tx = unknown> {
  /** Who owns it, e.g. `retrysafe.idempotency` or `service.users`. Parts never share versions. */
  part: string;
  /** A positive integer, ordered within its part. Part and version identify a migration. */
  version: number;
  /** What it does, for people reading `retrysafe_migrations`. */
  name: string;
  up: MigrationChange<Tx>;
}

/** One row of the migrations table: a migration that was applied. */
export interface AppliedMigration {
  part: string;
  version: number;
  name: string;
  /** sha256 of the SQL text; null for a function migration (its code cannot be compared). */
  checksum: string | null;
  appliedAtMs: number;
}

export interface MigrationReport {
  /** The migrations this call applied, in order; already-applied ones are skipped. */
  applied: { part: string; version: number; name: string }[];
}

export const defaultMigrationsTableName = 'retrysafe_migrations';

/** Base of the migration errors: the schema and this code disagree, so nothing was applied. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** The database holds a version of a part that this code does not know: a newer release migrated it. */
export class MigrationVersionUnknownError extends MigrationError {
  override name = 'MigrationVersionUnknownError';
  constructor(
    readonly part: string,
    readonly version: number,
    readonly appliedName: string,
    readonly knownVersion: number,
  ) {
    super(
      `The database has migration ${part} v${version} ("${appliedName}") applied, but this release knows ${part} only up to v${knownVersion}: a newer release migrated it. Run that release (or newer), or restore a backup taken before it migrated.`,
    );
  }
}

/** An applied migration's SQL was edited afterwards: refuse, since the schema is not what the code says. */
export class MigrationChecksumMismatchError extends MigrationError {
  override name = 'MigrationChecksumMismatchError';
  constructor(
    readonly part: string,
    readonly version: number,
    readonly migrationName: string,
  ) {
    super(
      `Migration ${part} v${version} ("${migrationName}") was already applied with different SQL. Never edit an applied migration: restore its original text and add a new version with the change.`,
    );
  }
}

const partPattern = /^[A-Za-z0-9_.:-]{1,200}$/;

/** Migrations by part and version; `register` refuses duplicates and malformed entries. */
export class MigrationRegistry<Tx = unknown> {
  readonly #byId = new Map<string, Migration<Tx>>();

  constructor(migrations: Iterable<Migration<Tx>> = []) {
    this.register(...migrations);
  }

  /** Adds migrations. Registering the very same migration again is a no-op; a different one under its id throws. */
  register(...migrations: Migration<Tx>[]): this {
    for (const migration of migrations) {
      checkMigration(migration);
      const id = migrationId(migration);
      const known = this.#byId.get(id);
      if (known === undefined) this.#byId.set(id, migration);
      else if (known.name !== migration.name || checksumOf(known) !== checksumOf(migration)) {
        throw new TypeError(
          `two different migrations are registered as ${migration.part} v${migration.version}`,
        );
      }
    }
    return this;
  }

  /** Every registered migration, by part and then by version. */
  list(): Migration<Tx>[] {
    return sortMigrations([...this.#byId.values()]);
  }
}

function checkMigration(migration: Migration<never>): void {
  if (!partPattern.test(migration.part)) {
    throw new TypeError(
      `migration part ${JSON.stringify(migration.part)} must be 1–200 of A-Z a-z 0-9 _ . : -`,
    );
  }
  if (!Number.isSafeInteger(migration.version) || migration.version < 1) {
    throw new TypeError(
      `migration ${migration.part} version ${migration.version} must be a positive integer`,
    );
  }
  if (typeof migration.name !== 'string' || migration.name.length === 0) {
    throw new TypeError(`migration ${migration.part} v${migration.version} needs a name`);
  }
}

function migrationId(migration: { part: string; version: number }): string {
  return `${migration.part}\u0000${migration.version}`;
}

function sortMigrations<Tx>(migrations: Migration<Tx>[]): Migration<Tx>[] {
  return migrations.sort((a, b) => (a.part === b.part ? a.version - b.version : a.part < b.part ? -1 : 1));
}

/** sha256 of a migration's SQL text (whitespace at the ends ignored), or null for a function. */
export function checksumOf(migration: Migration<never>): string | null {
  return typeof migration.up === 'string'
    ? createHash('sha256').update(migration.up.trim()).digest('hex')
    : null;
}

/** What to migrate: a registry, a list, or nothing (then the caller's own registry). */
export type MigrationSource<Tx> = MigrationRegistry<Tx> | Iterable<Migration<Tx>>;

export function migrationsOf<Tx>(source: MigrationSource<Tx>): Migration<Tx>[] {
  return source instanceof MigrationRegistry ? source.list() : new MigrationRegistry(source).list();
}

/**
 * The one decision both backends make under their lock: given what is applied, which of the
 * wanted migrations still run, in order. Throws (so nothing runs) when the database is ahead of
 * this code for one of the wanted parts, or when an applied migration's SQL changed. Parts this
 * call does not migrate are not judged: another component owns them.
 */
export function planMigrations<Tx>(wanted: Migration<Tx>[], applied: AppliedMigration[]): Migration<Tx>[] {
  const appliedById = new Map(applied.map((row) => [migrationId(row), row]));
  const latestKnown = new Map<string, number>();
  for (const migration of wanted) {
    latestKnown.set(migration.part, Math.max(latestKnown.get(migration.part) ?? 0, migration.version));
  }
  for (const row of applied) {
    const known = latestKnown.get(row.part);
    if (known !== undefined && row.version > known) {
      throw new MigrationVersionUnknownError(row.part, row.version, row.name, known);
    }
  }
  const pending: Migration<Tx>[] = [];
  for (const migration of sortMigrations([...wanted])) {
    const row = appliedById.get(migrationId(migration));
    if (row === undefined) {
      pending.push(migration);
      continue;
    }
    const checksum = checksumOf(migration);
    if (row.checksum !== null && checksum !== null && row.checksum !== checksum) {
      throw new MigrationChecksumMismatchError(migration.part, migration.version, migration.name);
    }
  }
  return pending;
}
