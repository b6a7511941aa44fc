import type { FastifyInstance } from 'fastify';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import type { HttpDependencies } from '../couch/app.js';

/** `GET /_doppel/replications`: every replication of the node, of every kind, in one status model. */
export function registerReplicationRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/_doppel/replications', async (req) => {
    requireServerAdmin(req.ctx);
    const replications = await deps.board.list();
    return { total: replications.length, replications };
  });
}
