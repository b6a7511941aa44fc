import type { FastifyInstance } from 'fastify';
import { parsePrecision } from '../../engines/points/line-protocol.js';
import { badRequest, notFound } from '../../errors.js';
import type { HttpDependencies } from '../couch/app.js';
import type { InfluxErrorBody } from './error-mapper.js';

interface WriteQuery {
  org?: string;
  orgID?: string;
  bucket?: string;
  precision?: string;
}

/** At most this many bad lines are listed in a 400's message. */
const LISTED_ERRORS = 100;

/**
 * `POST /api/v2/write`: line protocol into a bucket (by name or id). Valid lines are
 * stored and queued for the bucket's streams even when others are bad; the bad ones get
 * InfluxDB's 400 naming their lines.
 */
export function registerWriteRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.post<{ Querystring: WriteQuery }>('/api/v2/write', async (req, reply) => {
    const { org, orgID, bucket, precision: rawPrecision } = req.query;
    for (const value of [org, orgID])
      if (value !== undefined && value !== '' && !deps.buckets.isOrg(value))
        throw notFound(`organization name "${value}" not found`);
    if (bucket === undefined || bucket === '') throw badRequest('bucket is required');
    const precision = parsePrecision(rawPrecision);
    if (precision === undefined) throw badRequest(`invalid precision "${rawPrecision}"; use ns, us, ms or s`);
    const name = deps.buckets.byName(bucket)?.name ?? deps.buckets.byId(bucket)?.name;
    if (name === undefined) throw notFound(`bucket "${bucket}" not found`);
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const text = await deps.points.decode(raw, req.headers['content-encoding']);
    const { errors } = await deps.points.write(req.ctx, name, text, precision);
    if (errors.length === 0) return reply.code(204).send();
    const listed = errors.slice(0, LISTED_ERRORS).map((e) => `line ${e.line}: ${e.message}`);
    if (errors.length > LISTED_ERRORS) listed.push(`… and ${errors.length - LISTED_ERRORS} more`);
    const body: InfluxErrorBody = {
      code: 'invalid',
      message: `failed to parse line protocol:\nerrors encountered on line(s):\n${listed.join('\n')}`,
      line: errors[0].line,
    };
    return reply.code(400).type('application/json; charset=utf-8').send(JSON.stringify(body));
  });
}
