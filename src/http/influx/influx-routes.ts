/**
 * The InfluxDB 2.x-compatible front door: `/api/v2/write`, buckets, the organization,
 * remotes and replications, `/ping` and `/health`. Registered as one Fastify plugin
 * whose error handler answers InfluxDB's `{"code","message"}` (`error-mapper.ts`).
 */
import type { FastifyInstance } from 'fastify';
import { anonymousContext } from '../../services/auth/user-context.js';
import type { HttpDependencies } from '../couch/app.js';
import { registerBucketRoutes } from './bucket-routes.js';
import { toInfluxError } from './error-mapper.js';
import { registerInfluxRemoteRoutes } from './remote-routes.js';
import { registerInfluxReplicationRoutes } from './replication-routes.js';
import { registerWriteRoutes } from './write-routes.js';

export function registerInfluxRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  void app.register(async (influx) => {
    influx.setErrorHandler((err, req, reply) => {
      const { status, body, error } = toInfluxError(err);
      if (status >= 500) req.log.error({ err: error.cause ?? err, url: req.url }, 'request failed');
      if (req.ctx === null) req.ctx = anonymousContext();
      void reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));
    });
    influx.get('/ping', async (_req, reply) =>
      reply
        .code(204)
        .header('x-influxdb-version', `doppel-${deps.version}`)
        .header('x-influxdb-build', 'OSS')
        .send(),
    );
    influx.get('/health', async () => ({
      name: 'doppel',
      message: 'ready for queries and writes',
      status: 'pass',
      checks: [],
      version: deps.version,
      commit: '',
    }));
    registerWriteRoutes(influx, deps);
    registerBucketRoutes(influx, deps);
    registerInfluxRemoteRoutes(influx, deps);
    registerInfluxReplicationRoutes(influx, deps);
  });
}
