import type { ChangesQuery } from '../../src/engines/docs/document-store.js';

/** A `DocumentStore.changes` query of every change from the start, oldest first, as `q` amends it. */
export function changesQuery(q: Partial<ChangesQuery> = {}): ChangesQuery {
  return {
    since: 0,
    limit: Number.MAX_SAFE_INTEGER,
    descending: false,
    style: 'main_only',
    includeDocs: false,
    render: {},
    ...q,
  };
}
