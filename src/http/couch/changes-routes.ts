import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChangeRow, ChangesQuery } from '../../engines/docs/document-store.js';
import { badRequest } from '../../errors.js';
import type { ChangesFilterSpec } from '../../services/docs/document-service.js';
import { jsonBody, sendJson, type HttpDependencies } from './app.js';
import { drainedOrClosed, feedStream } from './feed-stream.js';
import { boolParam, intParam, stringListParam, stringParam, type Query } from './query.js';
import { closeSignal } from './server-routes.js';

const FEEDS = ['normal', 'longpoll', 'continuous', 'eventsource'] as const;
type Feed = (typeof FEEDS)[number];

/** A `_changes` row as JSON text. */
export function changeRowJson(row: ChangeRow): string {
  return row.doc === undefined
    ? `${changeRowHead(row)}}`
    : `${changeRowHead(row)},"doc":${row.doc.toString()}}`;
}

function changeRowHead(row: ChangeRow): string {
  let out = `{"seq":${row.seq},"id":${JSON.stringify(row.id)},"changes":[${row.changes.map((r) => `{"rev":${JSON.stringify(r)}}`).join(',')}]`;
  if (row.deleted) out += ',"deleted":true';
  return out;
}

/** Rows joined by `,\n` as one buffer: document bytes are copied, never decoded. */
export function changeRowsBytes(rows: readonly ChangeRow[], leadingComma: boolean): Buffer {
  const parts: Buffer[] = [];
  let text = leadingComma ? ',\n' : '';
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (i > 0) text += ',\n';
    text += changeRowHead(row);
    if (row.doc === undefined) {
      text += '}';
      continue;
    }
    parts.push(Buffer.from(`${text},"doc":`), row.doc);
    text = '}';
  }
  parts.push(Buffer.from(text));
  return Buffer.concat(parts);
}

function filterSpec(req: FastifyRequest, query: Query): ChangesFilterSpec {
  const filter = stringParam(query, 'filter');
  const body =
    req.method === 'POST' && Buffer.isBuffer(req.body) && req.body.length > 0
      ? (jsonBody(req) as Record<string, unknown>)
      : {};
  if (filter === undefined || filter === '') {
    return { kind: 'none' };
  }
  switch (filter) {
    case '_doc_ids': {
      const ids = body['doc_ids'] ?? stringListParam(query, 'doc_ids');
      if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string')) {
        throw badRequest('filter=_doc_ids needs doc_ids, a JSON array of strings', 'bad_request');
      }
      return { kind: 'doc_ids', ids };
    }
    case '_selector': {
      const selector = body['selector'];
      if (typeof selector !== 'object' || selector === null) {
        throw badRequest('filter=_selector needs a "selector" object in the request body', 'bad_request');
      }
      return { kind: 'selector', selector };
    }
    case '_design':
      return { kind: 'design' };
    case '_view':
      throw badRequest('filter=_view is not supported: Doppel has no views', 'bad_request');
    default: {
      const slash = filter.indexOf('/');
      if (slash <= 0 || slash === filter.length - 1)
        throw badRequest('`filter` must be of the form `designname/filtername`', 'bad_request');
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(query)) if (typeof v === 'string') params[k] = v;
      return { kind: 'js', ddoc: filter.slice(0, slash), name: filter.slice(slash + 1), query: params };
    }
  }
}

const PAGE_ROWS = 1000;

type PageReader = (
  after: number,
  max: number,
  skipPending?: boolean,
) => Promise<{ rows: ChangeRow[]; lastSeq: number; pending: number }>;

/**
 * A normal feed, streamed page by page: memory stays bounded whatever the
 * feed's length, and rendering overlaps with sending.
 */
async function streamNormalFeed(
  reply: FastifyReply,
  since: number,
  limit: number,
  page: PageReader,
): Promise<void> {
  // The first page is read before anything is sent, so its errors still become proper responses.
  let requested = Math.min(limit, PAGE_ROWS);
  let result = await page(since, requested, true);
  void reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'must-revalidate' });
  const closed = closeSignal(res);
  let sent = 0;
  try {
    res.write('{"results":[\n');
    for (;;) {
      if (result.rows.length > 0) {
        const chunk = changeRowsBytes(result.rows, sent > 0);
        sent += result.rows.length;
        if (!res.write(chunk)) await drainedOrClosed(res);
      }
      if (closed.aborted || sent >= limit || result.rows.length < requested) break;
      requested = Math.min(limit - sent, PAGE_ROWS);
      result = await page(result.lastSeq, requested, true);
    }
    const { pending } = await page(result.lastSeq, 0);
    res.end(`\n],\n"last_seq":${result.lastSeq},"pending":${pending}}\n`);
  } catch (err) {
    reply.log.error({ err }, 'changes feed failed while streaming');
    res.destroy();
  }
}

export function registerChangesRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  const handler = async (req: FastifyRequest<{ Params: { db: string } }>, reply: FastifyReply) => {
    const { db } = req.params;
    const query = req.query as Query;
    const feed = (stringParam(query, 'feed') ?? 'normal') as Feed;
    if (!FEEDS.includes(feed)) throw badRequest(`Supported feeds are ${FEEDS.join(', ')}`, 'bad_request');
    const record = deps.docs.info(req.ctx, db);
    const sinceRaw =
      stringParam(query, 'since') ??
      stringParam(query, 'last-event-id') ??
      req.headers['last-event-id']?.toString() ??
      '0';
    let since: number;
    if (sinceRaw === 'now') since = record.update_seq;
    else {
      // Opaque seqs of the form "N-..." are accepted by taking their numeric prefix.
      const numeric = /^(\d+)(-.*)?$/.exec(sinceRaw);
      if (numeric === null) throw badRequest(`Malformed since: ${sinceRaw}`, 'bad_request');
      since = Number(numeric[1]);
    }
    const descending = boolParam(query, 'descending');
    if (descending && feed !== 'normal' && feed !== 'longpoll') {
      // A live feed follows new changes forward; newest-first has no next page to wait for.
      throw badRequest(`descending is not supported by the ${feed} feed`, 'bad_request');
    }
    const limit = intParam(query, 'limit', Number.MAX_SAFE_INTEGER, 0);
    const includeDocs = boolParam(query, 'include_docs');
    const style = stringParam(query, 'style') ?? 'main_only';
    if (style !== 'main_only' && style !== 'all_docs')
      throw badRequest('style must be main_only or all_docs', 'bad_request');
    const spec = filterSpec(req, query);
    const filter = deps.docs.changesFilter(req.ctx, db, spec);
    const base: Omit<ChangesQuery, 'since' | 'limit'> = {
      descending,
      style,
      includeDocs,
      render: {
        conflicts: boolParam(query, 'conflicts'),
        attachments: boolParam(query, 'attachments'),
      },
      ...(filter === undefined ? {} : { filter }),
    };
    const timeout = intParam(query, 'timeout', 60_000, 0);
    const heartbeatRaw = stringParam(query, 'heartbeat');
    const heartbeat =
      heartbeatRaw === undefined
        ? undefined
        : heartbeatRaw === 'true'
          ? 60_000
          : intParam(query, 'heartbeat', 60_000, 1);
    const page: PageReader = (after, max, skipPending = false) =>
      deps.docs.changes(req.ctx, db, { ...base, since: after, limit: max, skipPending });

    if (feed === 'normal' || feed === 'longpoll') {
      const render = (result: Awaited<ReturnType<typeof page>>): string =>
        `{"results":[${result.rows.map(changeRowJson).join(',\n')}],"last_seq":${result.lastSeq},"pending":${result.pending}}`;
      if (feed === 'normal' && !descending) return streamNormalFeed(reply, since, limit, page);
      let result = await page(since, limit);
      // limit=0 can never return a row: waiting for one would never end.
      if (feed === 'normal' || result.rows.length > 0 || descending || limit === 0)
        return sendJson(reply, 200, render(result));
      // Longpoll waits for the next change; with a heartbeat, newlines keep the connection
      // alive meanwhile (JSON parsers skip the leading whitespace).
      const signal = AbortSignal.any([closeSignal(reply.raw), AbortSignal.timeout(timeout)]);
      let beat: NodeJS.Timeout | undefined;
      if (heartbeat !== undefined) {
        void reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'must-revalidate' });
        beat = setInterval(() => reply.raw.write('\n'), heartbeat);
      }
      try {
        for (;;) {
          await deps.docs.waitForChange(db, result.lastSeq, signal);
          result = await page(result.lastSeq, limit);
          if (result.rows.length > 0 || signal.aborted) break;
        }
      } finally {
        if (beat !== undefined) clearInterval(beat);
      }
      if (heartbeat === undefined) return sendJson(reply, 200, render(result));
      reply.raw.end(`${render(result)}\n`);
      return reply;
    }
    return feedStream(reply, {
      eventsource: feed === 'eventsource',
      heartbeatMs: heartbeat,
      timeoutMs: heartbeat === undefined ? timeout : undefined,
      since,
      limit,
      next: async (after, max) => {
        // A continuous feed never reports `pending`: counting the rest of the feed per page is waste.
        const result = await page(after, Math.min(max, 1000), true);
        return {
          lines: result.rows.map((r) => ({ seq: r.seq, json: changeRowJson(r) })),
          last: result.lastSeq,
        };
      },
      wait: (after, signal) => deps.docs.waitForChange(db, after, signal),
      end: (last) =>
        `{"last_seq":${last},"pending":${deps.docs.store.record(db).seq - last > 0 ? deps.docs.store.record(db).seq - last : 0}}`,
    });
  };
  app.get('/:db/_changes', handler);
  app.post('/:db/_changes', handler);
}
