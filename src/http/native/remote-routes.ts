import type { FastifyInstance } from 'fastify';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import { describeRemote } from '../../services/remotes/remote-registry.js';
import { jsonBody, type HttpDependencies } from '../couch/app.js';

/** `/_doppel/remotes`: named connections; admins only; secrets are never returned. */
export function registerRemoteRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/_doppel/remotes', async (req) => {
    requireServerAdmin(req.ctx);
    return { remotes: deps.remotes.list() };
  });

  app.get<{ Params: { name: string } }>('/_doppel/remotes/:name', async (req) => {
    requireServerAdmin(req.ctx);
    return describeRemote(deps.remotes.require(req.params.name));
  });

  app.put<{ Params: { name: string } }>('/_doppel/remotes/:name', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const { created, remote } = await deps.remotes.put(req.params.name, jsonBody(req));
    return reply.code(created ? 201 : 200).send({ ok: true, remote });
  });

  app.delete<{ Params: { name: string } }>('/_doppel/remotes/:name', async (req) => {
    requireServerAdmin(req.ctx);
    await deps.remotes.delete(req.params.name);
    return { ok: true };
  });
}
