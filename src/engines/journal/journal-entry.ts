/**
 * One committed mutation of the node, as consumers (node replicas, cluster
 * secondaries, outbound streams) read it. Entries are self-contained: a
 * document entry carries the revision path and the body, so a consumer never
 * needs the (possibly compacted) document store to apply it.
 */
export type JournalEntry =
  | { readonly k: 'db.create'; readonly db: string; readonly uid: number; readonly kind: DatabaseKind }
  | { readonly k: 'db.delete'; readonly db: string; readonly uid: number }
  | {
      readonly k: 'doc';
      readonly db: string;
      readonly id: string;
      readonly seq: number;
      /** Newest first: the written revision then its known ancestors. */
      readonly path: readonly string[];
      readonly deleted: boolean;
      /** The stored body (JSON text without `_id`/`_rev`), null for a stub-only graft. */
      readonly body: string;
      readonly atts?: Readonly<Record<string, AttachmentMeta>>;
    }
  | { readonly k: 'local'; readonly db: string; readonly id: string; readonly body: string | null }
  | { readonly k: 'security'; readonly db: string; readonly security: unknown }
  | { readonly k: 'revs_limit'; readonly db: string; readonly limit: number }
  | { readonly k: 'admin'; readonly name: string; readonly hash: unknown };

export type DatabaseKind = 'database' | 'bucket';

export interface AttachmentMeta {
  readonly content_type: string;
  /** `md5-<base64>` of the bytes, also their storage key. */
  readonly digest: string;
  readonly length: number;
  readonly revpos: number;
}

export interface JournalRecord {
  readonly lsn: number;
  /** Commit time, ms since the epoch. */
  readonly ts: number;
  readonly entry: JournalEntry;
}
