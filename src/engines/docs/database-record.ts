import { badRequest } from '../../errors.js';
import type { DatabaseKind } from '../journal/journal-entry.js';

/** What the node stores about one database (key: its name). */
export interface DatabaseRecord {
  /** Never reused: data of a deleted database is told apart from a recreated one by it. */
  readonly uid: number;
  readonly name: string;
  readonly kind: DatabaseKind;
  readonly createdAt: number;
  seq: number;
  docCount: number;
  delCount: number;
  revsLimit: number;
  security: unknown;
  /** Bytes of stored bodies and attachments, maintained approximately. */
  activeBytes: number;
  /** Set while this database is a read-only follower/replica; the reason names the source. */
  readOnly?: string;
}

export const SYSTEM_DATABASES = ['_users', '_replicator'] as const;

const NAME_PATTERN = /^[a-z][a-z0-9_$()+/-]*$/;

export function validateDatabaseName(name: string): string {
  if (name.length > 238)
    throw badRequest('Database name is too long (at most 238 characters)', 'illegal_database_name');
  const isSystem = (SYSTEM_DATABASES as readonly string[]).includes(name) || name === '_global_changes';
  const isReplicatorLike = name.endsWith('/_replicator') && NAME_PATTERN.test(name.slice(0, -12));
  if (!isSystem && !isReplicatorLike && !NAME_PATTERN.test(name)) {
    throw badRequest(
      `Name: '${name}'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, -, and / are allowed. Must begin with a letter.`,
      'illegal_database_name',
    );
  }
  return name;
}
