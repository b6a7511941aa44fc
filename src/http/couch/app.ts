import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { Journal } from '../../engines/journal/journal.js';
import { decodeJson } from '../../engines/docs/bulk-docs-request.js';
import { DoppelError, ErrorKind, unauthorized } from '../../errors.js';
import type { AuthService } from '../../services/auth/auth-service.js';
import { setCookieHeader } from '../../services/auth/session-cookie.js';
import { anonymousContext, type UserContext } from '../../services/auth/user-context.js';
import type { DocumentService } from '../../services/docs/document-service.js';
import type { FollowerService } from '../../services/followers/follower-service.js';
import type { LeaderStats } from '../../services/followers/leader-stats.js';
import type { RemoteRegistry } from '../../services/remotes/remote-registry.js';
import type { StatusBoard } from '../../services/replications/status-board.js';
import type { ReplicatorService } from '../../services/replicator/replicator-service.js';
import type { NodeMetrics } from '../../services/metrics/node-metrics.js';
import type { BucketService } from '../../services/streams/bucket-service.js';
import type { PointWriter } from '../../services/streams/point-writer.js';
import type { StreamService } from '../../services/streams/stream-service.js';
import { registerInfluxRoutes } from '../influx/influx-routes.js';
import { registerMetricsRoutes } from '../native/metrics-routes.js';
import { registerStreamRoutes } from '../native/stream-routes.js';
import { registerTokenRoutes } from '../native/token-routes.js';
import { registerJournalRoutes } from '../native/journal-routes.js';
import { registerRemoteRoutes } from '../native/remote-routes.js';
import { registerReplicationRoutes } from '../native/replication-routes.js';
import { registerOpenSearchRoutes } from '../opensearch/replication-routes.js';
import { registerChangesRoutes } from './changes-routes.js';
import { registerCopyRoutes } from './copy-routes.js';
import { registerDatabaseRoutes } from './database-routes.js';
import { registerDocumentRoutes } from './document-routes.js';
import { toCouchError } from './error-mapper.js';
import { registerReplicatorRoutes } from './replicator-routes.js';
import { registerServerRoutes } from './server-routes.js';

declare module 'fastify' {
  interface FastifyRequest {
    ctx: UserContext;
    authMethod: 'default' | 'cookie' | null;
  }
}

export interface HttpDependencies {
  readonly docs: DocumentService;
  readonly auth: AuthService;
  readonly journal: Journal;
  readonly replicator: ReplicatorService;
  readonly followers: FollowerService;
  readonly leaderStats: LeaderStats;
  readonly remotes: RemoteRegistry;
  readonly board: StatusBoard;
  readonly streams: StreamService;
  readonly buckets: BucketService;
  readonly points: PointWriter;
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  readonly nodeId: string;
  readonly version: string;
  readonly maxBodyBytes: number;
  readonly corsOrigins: readonly string[];
  readonly corsCredentials: boolean;
  readonly isReady: () => boolean;
}

/** Paths anyone may read without credentials (`/_session` also takes logins and logouts). */
const PUBLIC_PATHS = new Set(['/', '/_up', '/_session', '/ping', '/health']);

function isPublic(path: string, method: string): boolean {
  return path === '/_session' || (PUBLIC_PATHS.has(path) && (method === 'GET' || method === 'HEAD'));
}

/** The request body parsed as JSON; 400 `bad_request` when it is not (415 when not labelled JSON). */
export function jsonBody(req: FastifyRequest): unknown {
  return decodeJson(requestBytes(req));
}

/**
 * The request body's bytes; a POST body must say it is JSON (415 otherwise, as CouchDB): an
 * HTML form on any web page can POST text/plain with the browser's credentials, never JSON.
 */
export function requestBytes(req: FastifyRequest): Buffer {
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (req.method === 'POST' && raw.length > 0 && !isJsonContentType(req.headers['content-type']))
    throw new DoppelError(ErrorKind.UnsupportedMediaType, 'Content-Type must be application/json');
  return raw;
}

function isJsonContentType(header: string | undefined): boolean {
  const type = header?.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json' || (type?.startsWith('application/') === true && type.endsWith('+json'));
}

/** Sends JSON text already rendered (documents are spliced, not re-serialized). */
export function sendJson(reply: FastifyReply, status: number, json: string): FastifyReply {
  return reply.code(status).type('application/json').send(`${json}\n`);
}

export function buildHttpApp(deps: HttpDependencies): FastifyInstance {
  const httpLog: FastifyBaseLogger = deps.log.child({ door: 'http' });
  const app: FastifyInstance = Fastify({
    loggerInstance: httpLog,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.maxBodyBytes,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 4096 },
    return503OnClosing: true,
    exposeHeadRoutes: false,
    // Continuous feeds never end by themselves: closing the node closes them.
    forceCloseConnections: true,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => {
    done(null, body);
  });
  app.decorateRequest('ctx', null as unknown as UserContext);
  app.decorateRequest('authMethod', null);

  app.addHook('onRequest', async (req, reply) => {
    applyCors(deps, req, reply);
    if (req.method === 'OPTIONS') return;
    const { ctx, method, renewedCookie } = await deps.auth.authenticate(
      req.headers.authorization,
      req.headers.cookie,
    );
    req.ctx = ctx;
    req.authMethod = method;
    if (renewedCookie !== undefined) {
      void reply.header(
        'set-cookie',
        setCookieHeader(renewedCookie, { secure: false, maxAgeSeconds: deps.auth.sessionTimeoutS }),
      );
    }
    const path = req.url.split('?')[0];
    if (ctx.name === null && !isPublic(path, req.method)) {
      throw unauthorized('Authentication required.');
    }
  });

  app.options('*', async (_req, reply) => reply.code(204).send());

  app.setErrorHandler((err, req, reply) => {
    const { status, body, error } = toCouchError(err);
    if (status >= 500) req.log.error({ err: error.cause ?? err, url: req.url }, 'request failed');
    if (req.ctx === null) req.ctx = anonymousContext();
    if (status === 401 && req.headers['x-requested-with'] !== 'XMLHttpRequest') {
      void reply.header('www-authenticate', 'Basic realm="doppel"');
    }
    void reply
      .code(status)
      .type('application/json')
      .send(`${JSON.stringify(body)}\n`);
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).type('application/json').send('{"error":"not_found","reason":"missing"}\n');
  });

  registerServerRoutes(app, deps);
  registerJournalRoutes(app, deps);
  registerRemoteRoutes(app, deps);
  registerReplicationRoutes(app, deps);
  registerStreamRoutes(app, deps);
  registerTokenRoutes(app, deps);
  registerMetricsRoutes(app, deps);
  registerInfluxRoutes(app, deps);
  registerReplicatorRoutes(app, deps);
  registerOpenSearchRoutes(app, deps);
  registerDatabaseRoutes(app, deps);
  registerChangesRoutes(app, deps);
  registerCopyRoutes(app, deps);
  registerDocumentRoutes(app, deps);
  return app;
}

function applyCors(deps: HttpDependencies, req: FastifyRequest, reply: FastifyReply): void {
  const origin = req.headers.origin;
  if (origin === undefined || deps.corsOrigins.length === 0) return;
  const allowed = deps.corsOrigins.includes('*') || deps.corsOrigins.includes(origin);
  if (!allowed) return;
  void reply.header(
    'access-control-allow-origin',
    deps.corsCredentials || !deps.corsOrigins.includes('*') ? origin : '*',
  );
  void reply.header('vary', 'Origin');
  if (deps.corsCredentials) void reply.header('access-control-allow-credentials', 'true');
  if (req.method === 'OPTIONS') {
    void reply.header('access-control-allow-methods', 'GET, HEAD, POST, PUT, DELETE, OPTIONS');
    void reply.header(
      'access-control-allow-headers',
      req.headers['access-control-request-headers'] ?? 'accept, authorization, content-type, origin, referer',
    );
    void reply.header('access-control-max-age', '600');
  } else {
    void reply.header(
      'access-control-expose-headers',
      'content-type, cache-control, etag, x-couch-request-id',
    );
  }
}
