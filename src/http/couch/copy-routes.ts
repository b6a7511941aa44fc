import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DATABASE_COPY_CONTENT_TYPE } from '../../services/docs/database-copy-wire.js';
import { FOLLOWER_HEADER } from '../../services/followers/leader-stats.js';
import { DoppelError, ErrorKind } from '../../errors.js';
import { sendJson, type HttpDependencies } from './app.js';
import { drainedOrClosed } from './feed-stream.js';
import { closeSignal } from './server-routes.js';

type CopyRequest = FastifyRequest<{ Params: { db: string }; Querystring: { after?: string } }>;
type RestoreRequest = FastifyRequest<{ Params: { db: string } }>;

/**
 * Doppel's own `GET /{db}/_doppel_copy[?after=id]`: the database from one
 * snapshot (documents after `after`, in id order), for a follower's
 * bootstrap or a replication's first run. A binary stream; see
 * `services/docs/database-copy-wire.ts`. And `POST /{db}/_doppel_restore`:
 * one batch of such a copy pushed by a replication; 201 with the refused
 * revisions, in `_bulk_docs`' shape.
 */
export function registerCopyRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/:db/_doppel_copy', async (req: CopyRequest, reply: FastifyReply) => {
    const { db } = req.params;
    // Access and existence are checked here, before the status line goes out.
    const chunks = deps.docs.copy(req.ctx, db, req.query.after);
    const began = performance.now();
    void reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': DATABASE_COPY_CONTENT_TYPE, 'cache-control': 'no-store' });
    const closed = closeSignal(res);
    let bytes = 0;
    let docs = 0;
    try {
      for (;;) {
        const next = chunks.next();
        if (next.done === true) {
          docs = next.value;
          break;
        }
        bytes += next.value.length;
        if (!res.write(next.value)) await drainedOrClosed(res);
        if (closed.aborted) break;
      }
    } finally {
      chunks.return(0);
      res.end();
    }
    const follower = req.headers[FOLLOWER_HEADER];
    if (typeof follower === 'string')
      deps.leaderStats.record(db, follower, docs, bytes, performance.now() - began);
  });

  app.post('/:db/_doppel_restore', async (req: RestoreRequest, reply: FastifyReply) => {
    // A copy's own type: no web page can send it with a browser's credentials (CORS preflight).
    if (req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== DATABASE_COPY_CONTENT_TYPE)
      throw new DoppelError(
        ErrorKind.UnsupportedMediaType,
        `Content-Type must be ${DATABASE_COPY_CONTENT_TYPE}`,
      );
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const results = await deps.docs.restoreBatch(req.ctx, req.params.db, bytes);
    const refused = results.flatMap((r) =>
      r.ok
        ? []
        : [{ id: r.id, ...(r.rev === undefined ? {} : { rev: r.rev }), error: r.error, reason: r.reason }],
    );
    return sendJson(reply, 201, JSON.stringify(refused));
  });
}
