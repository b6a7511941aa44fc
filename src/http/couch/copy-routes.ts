import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DATABASE_COPY_CONTENT_TYPE } from '../../services/docs/database-copy-wire.js';
import { FOLLOWER_HEADER } from '../../services/followers/leader-stats.js';
import type { HttpDependencies } from './app.js';
import { drainedOrClosed } from './feed-stream.js';
import { closeSignal } from './server-routes.js';

type CopyRequest = FastifyRequest<{ Params: { db: string }; Querystring: { after?: string } }>;

/**
 * Doppel's own `GET /{db}/_doppel_copy[?after=id]`: the database from one
 * snapshot (documents after `after`, in id order), for a follower's
 * bootstrap. A binary stream; see `services/docs/database-copy-wire.ts`.
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
}
