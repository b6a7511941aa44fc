/**
 * Turns an `EndpointRef` into a `ReplicationEndpoint`: local databases
 * through the document service with the job's user, HTTP peers through
 * `HttpEndpoint` with the job's connection settings.
 */
import type { ReplicationEndpoint } from '../../engines/replication/endpoint.js';
import type { DocumentService } from '../docs/document-service.js';
import { HttpEndpoint } from './http-endpoint.js';
import { LocalEndpoint } from './local-endpoint.js';
import type { EndpointRef, ReplicationSpec } from './replication-spec.js';

export interface JobEndpoints {
  readonly source: ReplicationEndpoint;
  readonly target: ReplicationEndpoint;
}

export function endpointFor(
  docs: DocumentService,
  spec: ReplicationSpec,
  ref: EndpointRef,
  proxy: string | undefined,
  signal: AbortSignal,
): ReplicationEndpoint {
  if (ref.kind === 'local') return new LocalEndpoint(docs, spec.userCtx, ref.db);
  const headers: Record<string, string> = { ...ref.headers };
  if (ref.bearer !== undefined) headers['authorization'] = `Bearer ${ref.bearer}`;
  return new HttpEndpoint(
    {
      url: ref.url,
      headers,
      ...(ref.basic === undefined ? {} : { auth: { basic: ref.basic } }),
    },
    {
      connectionTimeout: spec.tuning.connectionTimeout,
      retriesPerRequest: spec.tuning.retriesPerRequest,
      httpConnections: spec.tuning.httpConnections,
      ...(proxy === undefined ? {} : { proxy }),
      signal,
    },
  );
}

export function jobEndpoints(
  docs: DocumentService,
  spec: ReplicationSpec,
  signal: AbortSignal,
): JobEndpoints {
  return {
    source: endpointFor(docs, spec, spec.source, spec.sourceProxy, signal),
    target: endpointFor(docs, spec, spec.target, spec.targetProxy, signal),
  };
}
