/**
 * Replication ids (reference §1.3): a stable md5 (hex) over everything that
 * makes two replications "the same": both endpoints' identities (never a
 * password), the filter (a design-document filter by its source code, a
 * built-in one by name and parameters, doc_ids, or the normalized selector),
 * `winning_revs_only` and `since_seq`. The job id adds `+continuous` and
 * `+create_target`; the checkpoint document uses the base id only.
 */
import { createHash } from 'node:crypto';
import { normalizeSelector } from '../docs/mango/selector.js';
import type { Seq } from './endpoint.js';

/** The filter as it enters the id. */
export type ReplicationIdFilter =
  | { readonly kind: 'none' }
  | { readonly kind: 'doc_ids'; readonly docIds: readonly string[] }
  | { readonly kind: 'selector'; readonly selector: unknown }
  /** `ddoc/name` filters: `code` is the filter function's source, fetched from the source database. */
  | {
      readonly kind: 'js';
      readonly name: string;
      readonly code: string;
      readonly queryParams: Readonly<Record<string, string>>;
    }
  /** `_`-prefixed built-in filters (e.g. `_view`): name and parameters. */
  | {
      readonly kind: 'builtin';
      readonly name: string;
      readonly queryParams: Readonly<Record<string, string>>;
    };

export interface ReplicationIdInput {
  readonly sourceIdentity: string;
  readonly targetIdentity: string;
  readonly filter: ReplicationIdFilter;
  readonly winningRevsOnly: boolean;
  readonly sinceSeq?: Seq;
}

export interface ReplicationIds {
  /** The base id: names the `_local/{baseId}` checkpoint documents. */
  readonly baseId: string;
  /** The base id with `+continuous` / `+create_target` when set. */
  readonly jobId: string;
}

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function filterPart(filter: ReplicationIdFilter): unknown {
  switch (filter.kind) {
    case 'none':
      return null;
    case 'doc_ids':
      return { doc_ids: [...filter.docIds] };
    case 'selector':
      // Pre-serialized: argument objects keep their key order (it matters to collation).
      return { selector: JSON.stringify(normalizeSelector(filter.selector)) };
    case 'js':
      return { filter_code: filter.code, query_params: filter.queryParams };
    case 'builtin':
      return { filter: filter.name, query_params: filter.queryParams };
  }
}

export function replicationBaseId(input: ReplicationIdInput): string {
  const parts: unknown[] = ['doppel-replication-v1', input.sourceIdentity, input.targetIdentity];
  parts.push(filterPart(input.filter));
  if (input.winningRevsOnly) parts.push('winning_revs_only');
  if (input.sinceSeq !== undefined) parts.push({ since_seq: input.sinceSeq });
  return createHash('md5').update(canonicalJson(parts)).digest('hex');
}

export function replicationIds(
  input: ReplicationIdInput,
  options: { readonly continuous: boolean; readonly createTarget: boolean },
): ReplicationIds {
  const baseId = replicationBaseId(input);
  const jobId = `${baseId}${options.continuous ? '+continuous' : ''}${options.createTarget ? '+create_target' : ''}`;
  return { baseId, jobId };
}
