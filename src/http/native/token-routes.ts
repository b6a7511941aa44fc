import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../errors.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import { jsonBody, type HttpDependencies } from '../couch/app.js';

/**
 * `/_doppel/tokens`: API tokens for `Authorization: Token …` (InfluxDB clients). The
 * token is in the creation response only; afterwards only its id and description show.
 */
export function registerTokenRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/_doppel/tokens', async (req) => {
    requireServerAdmin(req.ctx);
    return { tokens: deps.auth.tokens.list() };
  });

  app.post('/_doppel/tokens', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const raw =
      req.body !== undefined && Buffer.isBuffer(req.body) && req.body.length > 0 ? jsonBody(req) : {};
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw badRequest('the body must be a JSON object');
    const name = req.ctx.name;
    if (name === null) throw badRequest('an API token needs a named user');
    const created = await deps.auth.tokens.create(name, (raw as Record<string, unknown>)['description']);
    return reply.code(201).send(created);
  });

  app.delete<{ Params: { id: string } }>('/_doppel/tokens/:id', async (req) => {
    requireServerAdmin(req.ctx);
    await deps.auth.tokens.delete(req.params.id);
    return { ok: true };
  });
}
