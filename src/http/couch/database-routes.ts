import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AllDocsQuery, AllDocsRow, RevsReader } from '../../engines/docs/document-store.js';
import { badRequest } from '../../errors.js';
import { jsonBody, requestBytes, sendJson, type HttpDependencies } from './app.js';
import { boolParam, intParam, keyParam, stringListParam, type Query } from './query.js';

type DbRequest = FastifyRequest<{ Params: { db: string } }>;

function allDocsRowJson(row: AllDocsRow): string {
  if (row.error !== undefined)
    return `{"key":${JSON.stringify(row.key)},"error":${JSON.stringify(row.error)}}`;
  let out = `{"id":${JSON.stringify(row.id)},"key":${JSON.stringify(row.key)},"value":${JSON.stringify(row.value)}`;
  if (row.doc !== undefined) out += `,"doc":${row.doc === null ? 'null' : row.doc}`;
  return `${out}}`;
}

function allDocsQuery(query: Query, keys: readonly string[] | undefined): AllDocsQuery {
  const key = keyParam(query, 'key');
  const startkey = key ?? keyParam(query, 'startkey', 'start_key');
  const endkey = key ?? keyParam(query, 'endkey', 'end_key');
  return {
    ...(startkey === undefined ? {} : { startkey }),
    ...(endkey === undefined ? {} : { endkey }),
    inclusiveEnd: boolParam(query, 'inclusive_end', true),
    descending: boolParam(query, 'descending'),
    limit: intParam(query, 'limit', Number.MAX_SAFE_INTEGER),
    skip: intParam(query, 'skip', 0),
    includeDocs: boolParam(query, 'include_docs'),
    render: { conflicts: boolParam(query, 'conflicts'), attachments: boolParam(query, 'attachments') },
    ...(keys === undefined ? {} : { keys }),
  };
}

export function registerDatabaseRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  app.put('/:db', async (req: DbRequest, reply) => {
    await deps.docs.createDatabase(req.ctx, req.params.db);
    return reply
      .code(201)
      .header('location', `/${encodeURIComponent(req.params.db)}`)
      .send({ ok: true });
  });

  app.get('/:db', async (req: DbRequest) => deps.docs.info(req.ctx, req.params.db));
  app.head('/:db', async (req: DbRequest, reply) => {
    deps.docs.info(req.ctx, req.params.db);
    return reply.code(200).type('application/json').send();
  });

  app.delete('/:db', async (req: DbRequest) => {
    if ((req.query as Query)['rev'] !== undefined) {
      throw badRequest(
        'You tried to DELETE a database with a ?rev= parameter. Did you mean to DELETE a document instead?',
      );
    }
    await deps.docs.deleteDatabase(req.ctx, req.params.db);
    return { ok: true };
  });

  app.post('/:db', async (req: DbRequest, reply) => {
    const body = jsonBody(req);
    const doc =
      typeof body === 'object' && body !== null && !Array.isArray(body) && !('_id' in body)
        ? { ...body, _id: crypto.randomUUID().replaceAll('-', '') }
        : body;
    const result = await deps.docs.putDoc(req.ctx, req.params.db, doc, true);
    return reply.code(201).send({ ok: true, id: result.id, rev: result.rev });
  });

  /** The query of `_all_docs` and its kin, with POST's `keys` member. */
  const listQuery = (req: DbRequest): AllDocsQuery => {
    const query = req.query as Query;
    let keys = stringListParam(query, 'keys');
    if (req.method === 'POST') {
      const body = jsonBody(req) as { keys?: unknown } | null;
      if (body?.keys !== undefined) {
        if (!Array.isArray(body.keys) || !body.keys.every((k) => typeof k === 'string')) {
          throw badRequest('`keys` member must be an array of strings.', 'bad_request');
        }
        keys = body.keys;
      }
    }
    return allDocsQuery(query, keys);
  };
  const sendRows = (
    reply: FastifyReply,
    totalRows: number | null,
    offset: number | null,
    rows: AllDocsRow[],
  ) =>
    sendJson(
      reply,
      200,
      `{"total_rows":${totalRows},"offset":${offset},"rows":[\n${rows.map(allDocsRowJson).join(',\n')}\n]}`,
    );
  const allDocs = (designOnly: boolean) => async (req: DbRequest, reply: FastifyReply) => {
    const { totalRows, offset, rows } = deps.docs.allDocs(req.ctx, req.params.db, listQuery(req), designOnly);
    return sendRows(reply, totalRows, offset, rows);
  };
  app.get('/:db/_all_docs', allDocs(false));
  app.post('/:db/_all_docs', allDocs(false));
  app.get('/:db/_design_docs', allDocs(true));
  app.post('/:db/_design_docs', allDocs(true));
  // CouchDB counts neither a total nor an offset for local documents.
  const localDocs = async (req: DbRequest, reply: FastifyReply) =>
    sendRows(reply, null, null, deps.docs.localDocs(req.ctx, req.params.db, listQuery(req)));
  app.get('/:db/_local_docs', localDocs);
  app.post('/:db/_local_docs', localDocs);

  app.post('/:db/_bulk_docs', async (req: DbRequest, reply) => {
    const { newEdits, results } = await deps.docs.bulkDocsBody(req.ctx, req.params.db, requestBytes(req));
    const shown = newEdits ? results : results.filter((r) => !r.ok);
    const rows = shown.map((r) =>
      r.ok
        ? { ok: true, id: r.id, rev: r.rev }
        : { id: r.id, ...(r.rev === undefined ? {} : { rev: r.rev }), error: r.error, reason: r.reason },
    );
    return sendJson(reply, 201, JSON.stringify(rows));
  });

  app.post('/:db/_bulk_get', async (req: DbRequest, reply) => {
    const query = req.query as Query;
    const body = jsonBody(req) as { docs?: unknown } | null;
    if (typeof body !== 'object' || body === null || !Array.isArray(body.docs)) {
      throw badRequest('Missing JSON list of `docs`.', 'bad_request');
    }
    const render = { revs: boolParam(query, 'revs'), attachments: boolParam(query, 'attachments') };
    const latest = boolParam(query, 'latest');
    const results: string[] = [];
    // Made on first use inside the per-document try: a failure (no database, no access)
    // becomes each document's error, as it would document by document.
    let reader: RevsReader | undefined;
    for (const item of body.docs as unknown[]) {
      const {
        id,
        rev,
        atts_since: attsSince,
      } = (item ?? {}) as { id?: unknown; rev?: unknown; atts_since?: unknown };
      if (typeof id !== 'string') {
        results.push(
          `{"id":null,"docs":[{"error":{"id":null,"rev":null,"error":"illegal_docid","reason":"Document id must be a string"}}]}`,
        );
        continue;
      }
      if (rev !== undefined && typeof rev !== 'string')
        throw badRequest('rev must be a string', 'bad_request');
      const options = Array.isArray(attsSince) ? { ...render, attsSince: attsSince as string[] } : render;
      let docs: string[];
      try {
        const revs = rev === undefined ? undefined : [rev];
        if (revs === undefined) {
          docs = [`{"ok":${deps.docs.get(req.ctx, req.params.db, id, undefined, options)}}`];
        } else {
          reader ??= deps.docs.revsReader(req.ctx, req.params.db);
          docs = reader(id, revs, latest, options).map((r) =>
            'ok' in r
              ? `{"ok":${r.ok}}`
              : `{"error":{"id":${JSON.stringify(id)},"rev":${JSON.stringify(r.missing)},"error":"not_found","reason":"missing"}}`,
          );
        }
      } catch (err) {
        const reason = err instanceof Error ? err.message : 'missing';
        docs = [
          `{"error":{"id":${JSON.stringify(id)},"rev":${JSON.stringify(rev ?? null)},"error":"not_found","reason":${JSON.stringify(reason)}}}`,
        ];
      }
      results.push(`{"id":${JSON.stringify(id)},"docs":[${docs.join(',')}]}`);
    }
    return sendJson(reply, 200, `{"results":[${results.join(',\n')}]}`);
  });

  app.post('/:db/_revs_diff', async (req: DbRequest) =>
    deps.docs.revsDiff(req.ctx, req.params.db, jsonBody(req)),
  );

  app.post('/:db/_ensure_full_commit', async (req: DbRequest, reply) => {
    deps.docs.info(req.ctx, req.params.db);
    await deps.docs.store.sync();
    return reply.code(201).send({ ok: true, instance_start_time: '0' });
  });

  app.post('/:db/_compact', async (req: DbRequest, reply) => {
    deps.docs.requireAdmin(req.ctx, req.params.db);
    // Compaction runs in the background, as in CouchDB; 202 tells the caller it started.
    deps.docs
      .compact(req.ctx, req.params.db)
      .catch((err: unknown) => req.log.error({ err }, 'compaction failed'));
    return reply.code(202).send({ ok: true });
  });

  app.get('/:db/_security', async (req: DbRequest) => deps.docs.getSecurity(req.ctx, req.params.db));
  app.put('/:db/_security', async (req: DbRequest) => {
    await deps.docs.putSecurity(req.ctx, req.params.db, jsonBody(req));
    return { ok: true };
  });

  app.get('/:db/_revs_limit', async (req: DbRequest, reply) =>
    sendJson(reply, 200, String(deps.docs.getRevsLimit(req.ctx, req.params.db))),
  );
  app.put('/:db/_revs_limit', async (req: DbRequest) => {
    await deps.docs.putRevsLimit(req.ctx, req.params.db, jsonBody(req));
    return { ok: true };
  });

  app.post('/:db/_find', async (req: DbRequest) => deps.docs.find(req.ctx, req.params.db, jsonBody(req)));
}
