import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../errors.js';
import { clearCookieHeader, setCookieHeader } from '../../services/auth/session-cookie.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import { jsonBody, sendJson, type HttpDependencies } from './app.js';
import { feedStream } from './feed-stream.js';
import { intParam, stringParam, type Query } from './query.js';

export function registerServerRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/', async () => ({
    couchdb: 'Welcome',
    version: '3.4.0',
    vendor: { name: 'Doppel', version: deps.version },
    uuid: deps.nodeId,
    features: ['access-ready', 'partitioned', 'pluggable-storage-engines', 'reshard', 'scheduler'],
  }));

  app.get('/_up', async (_req, reply) => {
    if (!deps.isReady()) return reply.code(503).send({ status: 'starting' });
    return { status: 'ok', seeds: {} };
  });

  app.get('/_uuids', async (req) => {
    const count = intParam(req.query as Query, 'count', 1, 1);
    if (count > 1000) throw badRequest('count parameter too large', 'bad_request');
    return { uuids: Array.from({ length: count }, () => randomUUID().replaceAll('-', '')) };
  });

  app.get('/_all_dbs', async (req) => {
    const query = req.query as Query;
    let names = deps.docs.listDatabases(req.ctx).sort();
    if (query['descending'] === 'true') names = names.reverse();
    const skip = intParam(query, 'skip', 0);
    const limit = intParam(query, 'limit', names.length);
    return names.slice(skip, skip + limit);
  });

  app.get('/_session', async (req) => ({
    ok: true,
    userCtx: { name: req.ctx.name, roles: req.ctx.roles },
    info: {
      authentication_handlers: ['cookie', 'default'],
      ...(req.authMethod === null ? {} : { authenticated: req.authMethod }),
    },
  }));

  app.post('/_session', async (req, reply) => {
    const contentType = req.headers['content-type'] ?? '';
    let name: unknown;
    let password: unknown;
    if (contentType.startsWith('application/x-www-form-urlencoded')) {
      const form = new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
      name = form.get('name') ?? form.get('username');
      password = form.get('password');
    } else {
      const body = jsonBody(req) as Record<string, unknown> | null;
      name = body?.['name'] ?? body?.['username'];
      password = body?.['password'];
    }
    if (typeof name !== 'string' || typeof password !== 'string') {
      throw badRequest('name and password are required', 'bad_request');
    }
    const { ctx, cookie } = await deps.auth.login(name, password);
    void reply.header(
      'set-cookie',
      setCookieHeader(cookie, { secure: false, maxAgeSeconds: deps.auth.sessionTimeoutS }),
    );
    return { ok: true, name: ctx.name, roles: ctx.roles };
  });

  app.delete('/_session', async (_req, reply) => {
    void reply.header('set-cookie', clearCookieHeader({ secure: false }));
    return { ok: true };
  });

  app.get('/_db_updates', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const query = req.query as Query;
    const feed = stringParam(query, 'feed') ?? 'normal';
    if (!['normal', 'longpoll', 'continuous', 'eventsource'].includes(feed)) {
      throw badRequest(`Invalid feed: ${feed}`, 'bad_request');
    }
    const sinceRaw = stringParam(query, 'since') ?? '0';
    const since = sinceRaw === 'now' ? deps.docs.store.dbUpdatesSeq() : Number(sinceRaw);
    if (!Number.isSafeInteger(since) || since < 0)
      throw badRequest('since must be an integer or now', 'bad_request');
    const limit = intParam(query, 'limit', Number.MAX_SAFE_INTEGER, 0);
    const timeout = intParam(query, 'timeout', 60_000, 0);
    const heartbeat =
      query['heartbeat'] === undefined
        ? undefined
        : query['heartbeat'] === 'true'
          ? 60_000
          : intParam(query, 'heartbeat', 60_000, 1);
    if (feed === 'normal' || feed === 'longpoll') {
      let page = deps.docs.dbUpdates(req.ctx, since, limit);
      if (feed === 'longpoll' && page.rows.length === 0) {
        const abort = AbortSignal.timeout(timeout);
        await deps.docs.waitForDbUpdate(since, AbortSignal.any([abort, closeSignal(reply.raw)]));
        page = deps.docs.dbUpdates(req.ctx, since, limit);
      }
      return sendJson(reply, 200, JSON.stringify({ results: page.rows, last_seq: page.last }));
    }
    return feedStream(reply, {
      eventsource: feed === 'eventsource',
      heartbeatMs: heartbeat,
      timeoutMs: heartbeat === undefined ? timeout : undefined,
      since,
      limit,
      next: (after, max) => {
        const page = deps.docs.dbUpdates(req.ctx, after, max);
        return Promise.resolve({
          lines: page.rows.map((r) => ({ seq: r.seq, json: JSON.stringify(r) })),
          last: page.last,
        });
      },
      wait: (after, signal) => deps.docs.waitForDbUpdate(after, signal),
      end: (last) => JSON.stringify({ last_seq: last }),
    });
  });
}

/** Aborts when the client goes away (or the response ends): the response's `close`, not the request's. */
export function closeSignal(raw: { once(event: 'close', cb: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  raw.once('close', () => controller.abort());
  return controller.signal;
}
