import type { FastifyInstance } from 'fastify';
import { badRequest, notFound } from '../../errors.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import type { Bucket } from '../../services/streams/bucket-service.js';
import { jsonBody, type HttpDependencies } from '../couch/app.js';
import { objectBody, optString } from './influx-input.js';

/** `/api/v2/buckets` and `/api/v2/orgs`: buckets are databases of kind bucket; there is one organization. */
export function registerBucketRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  const { org } = deps.buckets;
  const render = (bucket: Bucket): Record<string, unknown> => ({
    id: bucket.id,
    orgID: org.id,
    type: 'user',
    name: bucket.name,
    retentionRules: [],
    createdAt: bucket.createdAt,
    updatedAt: bucket.createdAt,
    labels: [],
    links: { self: `/api/v2/buckets/${bucket.id}`, org: `/api/v2/orgs/${org.id}` },
  });
  const renderOrg = (): Record<string, unknown> => ({
    id: org.id,
    name: org.name,
    description: '',
    links: { self: `/api/v2/orgs/${org.id}`, buckets: `/api/v2/buckets?org=${encodeURIComponent(org.name)}` },
  });
  const checkOrg = (value: string | undefined): void => {
    if (value !== undefined && value !== '' && !deps.buckets.isOrg(value))
      throw notFound(`organization "${value}" not found`);
  };

  app.get<{ Querystring: { org?: string; orgID?: string; name?: string; id?: string } }>(
    '/api/v2/buckets',
    async (req) => {
      checkOrg(req.query.org);
      checkOrg(req.query.orgID);
      const buckets = deps.buckets
        .list(req.ctx)
        .filter(
          (b) =>
            (req.query.name === undefined || b.name === req.query.name) &&
            (req.query.id === undefined || b.id === req.query.id),
        );
      return { links: { self: '/api/v2/buckets' }, buckets: buckets.map(render) };
    },
  );

  app.get<{ Params: { id: string } }>('/api/v2/buckets/:id', async (req) => {
    requireServerAdmin(req.ctx);
    const bucket = deps.buckets.byId(req.params.id);
    if (bucket === undefined) throw notFound('bucket not found');
    return render(bucket);
  });

  app.post('/api/v2/buckets', async (req, reply) => {
    const body = objectBody(jsonBody(req));
    checkOrg(optString(body, 'orgID'));
    checkOrg(optString(body, 'org'));
    const name = optString(body, 'name');
    if (name === undefined || name === '') throw badRequest('bucket name is required');
    const bucket = await deps.buckets.create(req.ctx, name);
    return reply.code(201).send(render(bucket));
  });

  app.delete<{ Params: { id: string } }>('/api/v2/buckets/:id', async (req, reply) => {
    await deps.buckets.delete(req.ctx, req.params.id);
    return reply.code(204).send();
  });

  app.get('/api/v2/orgs', async (req) => {
    requireServerAdmin(req.ctx);
    return { links: { self: '/api/v2/orgs' }, orgs: [renderOrg()] };
  });

  app.get<{ Params: { id: string } }>('/api/v2/orgs/:id', async (req) => {
    requireServerAdmin(req.ctx);
    if (req.params.id !== org.id) throw notFound('organization not found');
    return renderOrg();
  });
}
