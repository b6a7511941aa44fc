/**
 * The OpenSearch cross-cluster replication API (`/_plugins/_replication/…`)
 * over the follower service, with OpenSearch's paths, bodies, replies and
 * error format. Also `GET _autofollow`, which OpenSearch lacks: the rules.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJson } from '../../engines/docs/bulk-docs-request.js';
import { anonymousContext, requireServerAdmin } from '../../services/auth/user-context.js';
import type { FollowerService } from '../../services/followers/follower-service.js';
import { FOLLOWER_HEADER, type LeaderStats } from '../../services/followers/leader-stats.js';
import { requestBytes } from '../couch/app.js';
import { toOpenSearchError } from './error-mapper.js';

export interface OpenSearchDependencies {
  readonly followers: FollowerService;
  readonly leaderStats: LeaderStats;
}

const BASE = '/_plugins/_replication';
const ACK = { acknowledged: true } as const;

type IndexRequest = FastifyRequest<{
  Params: { index: string };
  Querystring: Record<string, string | undefined>;
}>;

/** The JSON body; an empty body is `{}` (OpenSearch accepts bodiless `_stop`, `_resume`, …). */
function body(req: FastifyRequest): unknown {
  const raw = requestBytes(req);
  if (raw.length === 0 || raw.toString('utf8').trim() === '') return {};
  return decodeJson(raw);
}

function flag(value: string | undefined): boolean {
  return value === '' || value === 'true';
}

function countOk(payload: unknown): number {
  const text =
    typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('latin1') : '';
  let n = 0;
  for (let i = text.indexOf('{"ok":'); i >= 0; i = text.indexOf('{"ok":', i + 6)) n++;
  return n;
}

export function registerOpenSearchRoutes(app: FastifyInstance, deps: OpenSearchDependencies): void {
  // This node as a leader: count what followers read from it (leader_stats).
  app.addHook('onSend', async (req, reply, payload) => {
    const follower = req.headers[FOLLOWER_HEADER];
    if (typeof follower !== 'string' || reply.statusCode >= 300) return payload;
    const path = req.url.split('?')[0] ?? '';
    const db = decodeURIComponent(path.split('/')[1] ?? '');
    if (db === '' || db.startsWith('_')) return payload;
    const bytes =
      typeof payload === 'string'
        ? Buffer.byteLength(payload)
        : Buffer.isBuffer(payload)
          ? payload.length
          : 0;
    const operations = path.endsWith('/_bulk_get') ? countOk(payload) : 0;
    deps.leaderStats.record(db, follower, operations, bytes, reply.elapsedTime);
    return payload;
  });

  void app.register(async (scope) => {
    scope.setErrorHandler((err, req, reply) => {
      const { status, body: errorBody, error } = toOpenSearchError(err);
      if (status >= 500) req.log.error({ err: error.cause ?? err, url: req.url }, 'request failed');
      if (req.ctx === null) req.ctx = anonymousContext();
      void reply
        .code(status)
        .type('application/json')
        .send(`${JSON.stringify(errorBody)}\n`);
    });
    const f = deps.followers;
    const send = (reply: FastifyReply, value: unknown): FastifyReply =>
      reply
        .code(200)
        .type('application/json')
        .send(`${JSON.stringify(value)}\n`);

    scope.put(`${BASE}/:index/_start`, async (req: IndexRequest, reply) => {
      await f.startReplication(req.ctx, req.params.index, body(req), {
        waitForRestore: flag(req.query['wait_for_restore']),
      });
      return send(reply, ACK);
    });
    scope.post(`${BASE}/:index/_pause`, async (req: IndexRequest, reply) => {
      await f.pause(req.ctx, req.params.index, body(req));
      return send(reply, ACK);
    });
    scope.post(`${BASE}/:index/_resume`, async (req: IndexRequest, reply) => {
      await f.resume(req.ctx, req.params.index, body(req));
      return send(reply, ACK);
    });
    scope.post(`${BASE}/:index/_stop`, async (req: IndexRequest, reply) => {
      body(req);
      await f.stopReplication(req.ctx, req.params.index);
      return send(reply, ACK);
    });
    scope.get(`${BASE}/:index/_status`, async (req: IndexRequest, reply) =>
      send(reply, f.status(req.ctx, req.params.index, flag(req.query['verbose']))),
    );
    scope.put(`${BASE}/:index/_update`, async (req: IndexRequest, reply) => {
      await f.updateSettings(req.ctx, req.params.index, body(req));
      return send(reply, ACK);
    });

    scope.get(`${BASE}/leader_stats`, async (req, reply) => {
      requireServerAdmin(req.ctx);
      return send(reply, deps.leaderStats.view());
    });
    scope.get(`${BASE}/follower_stats`, async (req, reply) => send(reply, f.followerStats(req.ctx)));
    scope.get(`${BASE}/autofollow_stats`, async (req, reply) => send(reply, f.autofollowStats(req.ctx)));

    scope.post(`${BASE}/_autofollow`, async (req, reply) => {
      await f.putRule(req.ctx, body(req));
      return send(reply, ACK);
    });
    scope.delete(`${BASE}/_autofollow`, async (req, reply) => {
      await f.deleteRule(req.ctx, body(req));
      return send(reply, ACK);
    });
    scope.get(`${BASE}/_autofollow`, async (req, reply) => send(reply, f.listRules(req.ctx)));

    for (const action of ['start', 'stop', 'pause', 'resume'] as const) {
      scope.post(`${BASE}/_bulk_${action}`, async (req, reply) =>
        send(reply, await f.bulk(req.ctx, action, body(req))),
      );
    }
  });
}
