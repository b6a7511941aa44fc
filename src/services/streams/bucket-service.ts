/**
 * Buckets and the one organization, for the InfluxDB API. A bucket is a database of kind
 * `bucket`; its InfluxDB id is the database uid in 16 hex digits (never reused, like the
 * uid). The organization's id derives from the node id.
 */
import type { DocumentStore } from '../../engines/docs/document-store.js';
import type { DatabaseRecord } from '../../engines/docs/database-record.js';
import { notFound } from '../../errors.js';
import { defaultSecurityObject, requireServerAdmin, type UserContext } from '../auth/user-context.js';
import type { StreamService } from './stream-service.js';

export interface Organization {
  readonly id: string;
  readonly name: string;
}

export interface Bucket {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

export const bucketId = (uid: number): string => uid.toString(16).padStart(16, '0');

export class BucketService {
  readonly org: Organization;
  readonly #docs: DocumentStore;
  readonly #streams: StreamService;

  constructor(docs: DocumentStore, streams: StreamService, org: Organization) {
    this.#docs = docs;
    this.#streams = streams;
    this.org = org;
  }

  /** True for the organization's name or id (InfluxDB's `org` / `orgID`). */
  isOrg(nameOrId: string): boolean {
    return nameOrId === this.org.name || nameOrId === this.org.id;
  }

  list(ctx: UserContext): Bucket[] {
    requireServerAdmin(ctx);
    const out: Bucket[] = [];
    for (const name of this.#docs.list()) {
      const record = this.#docs.record(name);
      if (record.kind === 'bucket') out.push(toBucket(record));
    }
    return out;
  }

  byName(name: string): Bucket | undefined {
    if (!this.#docs.exists(name)) return undefined;
    const record = this.#docs.record(name);
    return record.kind === 'bucket' ? toBucket(record) : undefined;
  }

  byId(id: string): Bucket | undefined {
    for (const name of this.#docs.list()) {
      const record = this.#docs.record(name);
      if (record.kind === 'bucket' && bucketId(record.uid) === id) return toBucket(record);
    }
    return undefined;
  }

  /** A local bucket or database by name, or a bucket by id: what a stream may read from. */
  sourceName(idOrName: string): string {
    const byId = this.byId(idOrName);
    if (byId !== undefined) return byId.name;
    if (this.#docs.exists(idOrName)) return idOrName;
    throw notFound(`bucket "${idOrName}" not found`);
  }

  async create(ctx: UserContext, name: string): Promise<Bucket> {
    requireServerAdmin(ctx);
    await this.#docs.create(name, 'bucket', defaultSecurityObject());
    return toBucket(this.#docs.record(name));
  }

  async delete(ctx: UserContext, id: string): Promise<void> {
    requireServerAdmin(ctx);
    const bucket = this.byId(id);
    if (bucket === undefined) throw notFound(`bucket "${id}" not found`);
    await this.#streams.deleteForSource(bucket.name);
    await this.#docs.delete(bucket.name);
  }
}

function toBucket(record: DatabaseRecord): Bucket {
  return { id: bucketId(record.uid), name: record.name, createdAt: new Date(record.createdAt).toISOString() };
}
