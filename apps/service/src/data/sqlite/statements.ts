// Prepared statements per connection: a repository prepares on the `tx` it is given (or the
// unit of work's database for reads), once per Database.
import type { SqliteDatabase } from 'retrysafe/stores/sqlite';

/** A cache of `prepare(db)`'s result per Database, for one repository. */
export function statementCache<T>(prepare: (db: SqliteDatabase) => T): (db: SqliteDatabase) => T {
  const cache = new WeakMap<SqliteDatabase, T>();
  return (db) => {
    let statements = cache.get(db);
    if (statements === undefined) {
      statements = prepare(db);
      cache.set(db, statements);
    }
    return statements;
  };
}
