import type { FastifyInstance } from 'fastify';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import type { HttpDependencies } from '../couch/app.js';

/** Doppel's own API under `/_doppel`: journal status (head LSN, retained range, cursors). */
export function registerJournalRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/_doppel/journal', async (req) => {
    requireServerAdmin(req.ctx);
    return deps.journal.status();
  });
}
