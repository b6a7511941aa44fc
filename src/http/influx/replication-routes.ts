import type { FastifyInstance } from 'fastify';
import { badRequest, notFound } from '../../errors.js';
import { requireServerAdmin } from '../../services/auth/user-context.js';
import { bucketId } from '../../services/streams/bucket-service.js';
import {
  FULL_QUEUE_POLICIES,
  type FullQueuePolicy,
  type StreamInput,
} from '../../services/streams/stream-config.js';
import type { StreamView } from '../../services/streams/stream-service.js';
import { jsonBody, type HttpDependencies } from '../couch/app.js';
import { objectBody, optBoolean, optNumber, optString, queryFlag, type JsonObject } from './influx-input.js';

/**
 * `/api/v2/replications`: InfluxDB's replication objects over Doppel's streams, with its
 * field names (`RemoteBucketName` is spelled with a capital R in responses, as InfluxDB
 * does), defaults and minima. `fullQueuePolicy` (`drop` | `reject`) is Doppel's own.
 */
export function registerInfluxReplicationRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  const orgID = deps.buckets.org.id;
  const render = ({ config, queue, status }: StreamView): Record<string, unknown> => ({
    id: config.id,
    orgID,
    name: config.name,
    ...(config.description === undefined ? {} : { description: config.description }),
    remoteID: config.remote,
    localBucketID: bucketId(config.sourceUid),
    remoteBucketID: config.remoteBucketID,
    RemoteBucketName: config.remoteBucketName,
    maxQueueSizeBytes: config.maxQueueSizeBytes,
    currentQueueSizeBytes: queue.queuedBytes,
    remainingBytesToBeSynced: queue.queuedBytes,
    ...(status.latestResponseCode === null ? {} : { latestResponseCode: status.latestResponseCode }),
    ...(status.latestErrorMessage === null ? {} : { latestErrorMessage: status.latestErrorMessage }),
    dropNonRetryableData: config.dropNonRetryableData,
    maxAgeSeconds: config.maxAgeSeconds,
    fullQueuePolicy: config.fullQueuePolicy,
  });
  const checkOrg = (value: string | undefined): void => {
    if (value !== undefined && value !== '' && !deps.buckets.isOrg(value))
      throw notFound(`organization "${value}" not found`);
  };
  const input = (body: JsonObject): StreamInput => {
    checkOrg(optString(body, 'orgID'));
    const policy = optString(body, 'fullQueuePolicy');
    if (policy !== undefined && !(FULL_QUEUE_POLICIES as readonly string[]).includes(policy))
      throw badRequest(`fullQueuePolicy must be one of ${FULL_QUEUE_POLICIES.join(', ')}`);
    const localBucketID = optString(body, 'localBucketID');
    return {
      name: optString(body, 'name'),
      description: optString(body, 'description'),
      source: localBucketID === undefined ? undefined : deps.buckets.sourceName(localBucketID),
      remote: optString(body, 'remoteID'),
      remoteBucketName: optString(body, 'remoteBucketName') ?? optString(body, 'RemoteBucketName'),
      remoteBucketID: optString(body, 'remoteBucketID'),
      maxQueueSizeBytes: optNumber(body, 'maxQueueSizeBytes'),
      maxAgeSeconds: optNumber(body, 'maxAgeSeconds'),
      dropNonRetryableData: optBoolean(body, 'dropNonRetryableData'),
      fullQueuePolicy: policy as FullQueuePolicy | undefined,
    };
  };

  app.get<{ Querystring: { orgID?: string; name?: string; remoteID?: string; localBucketID?: string } }>(
    '/api/v2/replications',
    async (req) => {
      requireServerAdmin(req.ctx);
      checkOrg(req.query.orgID);
      const { name, remoteID, localBucketID } = req.query;
      const replications = deps.streams
        .list()
        .filter(
          ({ config }) =>
            (name === undefined || config.name === name) &&
            (remoteID === undefined || config.remote === remoteID) &&
            (localBucketID === undefined || bucketId(config.sourceUid) === localBucketID),
        );
      return { replications: replications.map(render) };
    },
  );

  app.post<{ Querystring: { validate?: string } }>('/api/v2/replications', async (req, reply) => {
    requireServerAdmin(req.ctx);
    const body = objectBody(jsonBody(req));
    if (optString(body, 'localBucketID') === undefined) throw badRequest('localBucketID is required');
    const created = await deps.streams.create(input(body), queryFlag(req.query.validate));
    if (created === null) return reply.code(204).send();
    return reply.code(201).send(render(created));
  });

  app.get<{ Params: { id: string } }>('/api/v2/replications/:id', async (req) => {
    requireServerAdmin(req.ctx);
    return render(deps.streams.get(req.params.id));
  });

  app.patch<{ Params: { id: string }; Querystring: { validate?: string } }>(
    '/api/v2/replications/:id',
    async (req, reply) => {
      requireServerAdmin(req.ctx);
      const updated = await deps.streams.update(
        req.params.id,
        input(objectBody(jsonBody(req))),
        queryFlag(req.query.validate),
      );
      if (updated === null) return reply.code(204).send();
      return render(updated);
    },
  );

  app.delete<{ Params: { id: string } }>('/api/v2/replications/:id', async (req, reply) => {
    requireServerAdmin(req.ctx);
    await deps.streams.delete(req.params.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/v2/replications/:id/validate', async (req, reply) => {
    requireServerAdmin(req.ctx);
    await deps.streams.validate(req.params.id);
    return reply.code(204).send();
  });
}
