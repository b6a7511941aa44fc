import type { FastifyInstance } from 'fastify';
import { notFound } from '../../errors.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import { isReplicatorDb } from '../../services/replicator/replicator-docs.js';
import { jsonBody, type HttpDependencies } from './app.js';
import { intParam, stringParam, type Query } from './query.js';

/**
 * `/_replicate`, `/_scheduler/jobs`, `/_scheduler/docs`, `/_active_tasks`
 * (reference §2.6–§2.9). `_scheduler/docs/{db}/{docid}` accepts an unescaped
 * `other/_replicator` database name.
 */
export function registerReplicatorRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  const replicator = deps.replicator;

  app.post('/_replicate', async (req, reply) => {
    const { status, body } = await replicator.replicate(req.ctx, jsonBody(req));
    return reply.code(status).send(body);
  });

  app.get('/_active_tasks', async (req) => {
    requireServerAdmin(req.ctx);
    return replicator.activeTasks();
  });

  app.get('/_scheduler/jobs', async (req) => {
    requireServerAdmin(req.ctx);
    const query = req.query as Query;
    return replicator.schedulerJobs(intParam(query, 'skip', 0), intParam(query, 'limit', 100));
  });

  app.get<{ Params: { id: string } }>('/_scheduler/jobs/:id', async (req) => {
    requireServerAdmin(req.ctx);
    return replicator.schedulerJob(req.params.id);
  });

  app.get('/_scheduler/docs', async (req) => {
    requireServerAdmin(req.ctx);
    return schedulerDocs(deps, req.query as Query, null);
  });

  app.get<{ Params: { '*': string } }>('/_scheduler/docs/*', async (req) => {
    requireServerAdmin(req.ctx);
    const rest = decodeURIComponent(req.params['*']).replace(/\/+$/, '');
    if (isReplicatorDb(rest)) return schedulerDocs(deps, req.query as Query, rest);
    const marker = rest.lastIndexOf('_replicator/');
    if (marker < 0) throw notFound('not a replicator database');
    const db = rest.slice(0, marker + '_replicator'.length);
    return replicator.schedulerDoc(db, rest.slice(marker + '_replicator/'.length));
  });
}

async function schedulerDocs(deps: HttpDependencies, query: Query, db: string | null): Promise<unknown> {
  const states = (stringParam(query, 'states') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return deps.replicator.schedulerDocs(db, states, intParam(query, 'skip', 0), intParam(query, 'limit', 100));
}
