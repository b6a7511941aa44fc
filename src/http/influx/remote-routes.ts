import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { badRequest, notFound } from '../../errors.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import type { Remote } from '../../services/remotes/remote-registry.js';
import { jsonBody, type HttpDependencies } from '../couch/app.js';
import { objectBody, optBoolean, optString, type JsonObject } from './influx-input.js';

/**
 * `/api/v2/remotes`: InfluxDB's view of the remote registry (`/_doppel/remotes`). A
 * remote's `id` is its registry name; `remoteAPIToken` is stored as its token and never
 * returned.
 */
export function registerInfluxRemoteRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  const orgID = deps.buckets.org.id;
  const render = (remote: Remote): Record<string, unknown> => ({
    id: remote.name,
    orgID,
    name: remote.display_name ?? remote.name,
    ...(remote.description === undefined ? {} : { description: remote.description }),
    remoteURL: remote.url,
    ...(remote.remote_org_id === undefined ? {} : { remoteOrgID: remote.remote_org_id }),
    allowInsecureTLS: remote.allow_insecure_tls === true,
  });
  const checkOrg = (value: string | undefined): void => {
    if (value !== undefined && value !== '' && !deps.buckets.isOrg(value))
      throw notFound(`organization "${value}" not found`);
  };
  /** The registry body for `input` over `base` (secrets kept unless replaced). */
  const registryBody = (input: JsonObject, base: Remote | undefined): Record<string, unknown> => {
    const url = optString(input, 'remoteURL') ?? base?.url;
    if (url === undefined) throw badRequest('remoteURL is required');
    const token = optString(input, 'remoteAPIToken');
    const out: Record<string, unknown> = { url, kind: base?.kind ?? 'influxdb' };
    if (token !== undefined) out['token'] = token;
    else if (base?.token !== undefined) out['token'] = base.token;
    else if (base?.username !== undefined) {
      out['username'] = base.username;
      if (base.password !== undefined) out['password'] = base.password;
    }
    const name = optString(input, 'name') ?? base?.display_name;
    if (name !== undefined) out['display_name'] = name;
    const description = optString(input, 'description') ?? base?.description;
    if (description !== undefined) out['description'] = description;
    const remoteOrgId = optString(input, 'remoteOrgID') ?? base?.remote_org_id;
    if (remoteOrgId !== undefined && remoteOrgId !== '') out['remote_org_id'] = remoteOrgId;
    const insecure = optBoolean(input, 'allowInsecureTLS') ?? base?.allow_insecure_tls;
    if (insecure !== undefined) out['allow_insecure_tls'] = insecure;
    return out;
  };

  app.get<{ Querystring: { orgID?: string; name?: string; remoteURL?: string } }>(
    '/api/v2/remotes',
    async (req) => {
      requireServerAdmin(req.ctx);
      checkOrg(req.query.orgID);
      const remotes = deps.remotes
        .list()
        .map((view) => deps.remotes.require(view.name))
        .filter((r) => r.kind !== 'redis')
        .filter((r) => req.query.name === undefined || (r.display_name ?? r.name) === req.query.name)
        .filter(
          (r) => req.query.remoteURL === undefined || r.url === req.query.remoteURL.replace(/\/+$/, ''),
        );
      return { remotes: remotes.map(render) };
    },
  );

  app.post('/api/v2/remotes', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const input = objectBody(jsonBody(req));
    checkOrg(optString(input, 'orgID'));
    if (optString(input, 'name') === undefined) throw badRequest('name is required');
    const id = randomBytes(8).toString('hex');
    await deps.remotes.put(id, registryBody(input, undefined));
    return reply.code(201).send(render(deps.remotes.require(id)));
  });

  app.get<{ Params: { id: string } }>('/api/v2/remotes/:id', async (req) => {
    requireServerAdmin(req.ctx);
    return render(requireRemote(deps, req.params.id));
  });

  app.patch<{ Params: { id: string } }>('/api/v2/remotes/:id', async (req) => {
    requireServerAdmin(req.ctx);
    const base = requireRemote(deps, req.params.id);
    await deps.remotes.put(base.name, registryBody(objectBody(jsonBody(req)), base));
    return render(deps.remotes.require(base.name));
  });

  app.delete<{ Params: { id: string } }>('/api/v2/remotes/:id', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const remote = requireRemote(deps, req.params.id);
    const used = deps.streams.list().find((s) => s.config.remote === remote.name);
    if (used !== undefined)
      throw badRequest(`remote "${remote.name}" is used by replication ${used.config.id}; delete that first`);
    await deps.remotes.delete(remote.name);
    return reply.code(204).send();
  });
}

function requireRemote(deps: HttpDependencies, id: string): Remote {
  const remote = deps.remotes.get(id);
  if (remote === undefined || remote.kind === 'redis') throw notFound(`remote "${id}" not found`);
  return remote;
}
