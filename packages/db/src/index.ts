export { type CreateDbOptions, createDb, type DbDialect, type DbHandle, roleOfUrl } from './create-db.ts';
export { grantApplicationRole, MigrationError, migrateToLatest, ownsEventLog } from './migrate.ts';
export { migrations } from './migrations/index.ts';
export { copyBinaryOut } from './raw-bytes.ts';
export type * from './schema.ts';
