import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../errors.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import {
  FULL_QUEUE_POLICIES,
  SINK_KINDS,
  type FullQueuePolicy,
  type SinkKind,
  type StreamInput,
} from '../../services/streams/stream-config.js';
import type { StreamView } from '../../services/streams/stream-service.js';
import { jsonBody, type HttpDependencies } from '../couch/app.js';

type Body = Record<string, unknown>;

const FIELDS = new Set([
  'name',
  'description',
  'source',
  'remote',
  'target',
  'target_id',
  'max_queue_size_bytes',
  'max_age_seconds',
  'drop_non_retryable_data',
  'full_queue_policy',
  'sink',
]);

function read<T>(body: Body, field: string, type: 'string' | 'number' | 'boolean'): T | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) throw badRequest(`${field} must be a ${type}`);
  return value as T;
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  field: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw badRequest(`${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

function streamInput(raw: unknown): StreamInput {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw badRequest('the stream must be a JSON object');
  const body = raw as Body;
  const unknown = Object.keys(body).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw badRequest(`unknown field: ${unknown.join(', ')}`);
  return {
    name: read<string>(body, 'name', 'string'),
    description: read<string>(body, 'description', 'string'),
    source: read<string>(body, 'source', 'string'),
    remote: read<string>(body, 'remote', 'string'),
    remoteBucketName: read<string>(body, 'target', 'string'),
    remoteBucketID: read<string>(body, 'target_id', 'string'),
    maxQueueSizeBytes: read<number>(body, 'max_queue_size_bytes', 'number'),
    maxAgeSeconds: read<number>(body, 'max_age_seconds', 'number'),
    dropNonRetryableData: read<boolean>(body, 'drop_non_retryable_data', 'boolean'),
    fullQueuePolicy: oneOf<FullQueuePolicy>(
      read<string>(body, 'full_queue_policy', 'string'),
      FULL_QUEUE_POLICIES,
      'full_queue_policy',
    ),
    sink: oneOf<SinkKind>(read<string>(body, 'sink', 'string'), SINK_KINDS, 'sink'),
  };
}

function render({ config, queue, status }: StreamView): Record<string, unknown> {
  return {
    id: config.id,
    name: config.name,
    ...(config.description === undefined ? {} : { description: config.description }),
    source: config.source,
    source_kind: config.sourceKind,
    remote: config.remote,
    target: config.remoteBucketName,
    target_id: config.remoteBucketID,
    sink: config.sink,
    max_queue_size_bytes: config.maxQueueSizeBytes,
    max_age_seconds: config.maxAgeSeconds,
    drop_non_retryable_data: config.dropNonRetryableData,
    full_queue_policy: config.fullQueuePolicy,
    created_at: config.createdAt,
    updated_at: config.updatedAt,
    queue: {
      current_bytes: queue.queuedBytes,
      current_points: queue.queuedPoints,
      total_bytes_queued: queue.totalQueuedBytes,
      total_points_queued: queue.totalQueuedPoints,
      bytes_sent: queue.sentBytes,
      points_sent: queue.sentPoints,
      bytes_failed_to_queue: queue.droppedFullBytes,
      points_failed_to_queue: queue.droppedFullPoints,
      bytes_dropped: queue.droppedBadBytes,
      points_dropped: queue.droppedBadPoints,
      bytes_purged: queue.purgedBytes,
      points_purged: queue.purgedPoints,
      position_lsn: queue.lsn,
    },
    state: status.state,
    latest_response_code: status.latestResponseCode,
    latest_error: status.latestErrorMessage,
    credential_rejected: status.credentialRejected,
  };
}

/**
 * `/_doppel/streams`: outbound streams of buckets (line protocol to InfluxDB or Doppel)
 * and of document databases (`_bulk_docs` to Doppel or CouchDB). Admins only.
 */
export function registerStreamRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.get('/_doppel/streams', async (req) => {
    requireServerAdmin(req.ctx);
    return { streams: deps.streams.list().map(render) };
  });

  app.post<{ Querystring: { validate?: string } }>('/_doppel/streams', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const created = await deps.streams.create(streamInput(jsonBody(req)), req.query.validate === 'true');
    if (created === null) return reply.code(200).send({ ok: true, valid: true });
    return reply.code(201).send(render(created));
  });

  app.get<{ Params: { id: string } }>('/_doppel/streams/:id', async (req) => {
    requireServerAdmin(req.ctx);
    return render(deps.streams.get(req.params.id));
  });

  app.patch<{ Params: { id: string } }>('/_doppel/streams/:id', async (req) => {
    requireServerAdmin(req.ctx);
    const updated = await deps.streams.update(req.params.id, streamInput(jsonBody(req)), false);
    return updated === null ? { ok: true } : render(updated);
  });

  app.delete<{ Params: { id: string } }>('/_doppel/streams/:id', async (req) => {
    requireServerAdmin(req.ctx);
    await deps.streams.delete(req.params.id);
    return { ok: true };
  });

  app.post<{ Params: { id: string } }>('/_doppel/streams/:id/validate', async (req) => {
    requireServerAdmin(req.ctx);
    await deps.streams.validate(req.params.id);
    return { ok: true, valid: true };
  });
}
