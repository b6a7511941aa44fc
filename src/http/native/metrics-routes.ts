import type { FastifyInstance } from 'fastify';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import type { HttpDependencies } from '../couch/app.js';

/** `GET /metrics`: Prometheus text format (server admins, e.g. by basic auth or an API token). */
export function registerMetricsRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/metrics', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const { contentType, body } = await deps.metrics.text();
    return reply.code(200).type(contentType).send(body);
  });
}
