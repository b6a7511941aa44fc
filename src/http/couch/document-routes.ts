import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RenderOptions } from '../../engines/docs/doc-output.js';
import { parseRev } from '../../engines/docs/rev-tree.js';
import { badRequest, DoppelError, ErrorKind } from '../../errors.js';
import { jsonBody, sendJson, type HttpDependencies } from './app.js';
import { boolParam, jsonParam, stringListParam, stringParam, type Query } from './query.js';

type DocRequest = FastifyRequest<{ Params: { db: string; id?: string; ddoc?: string; '*'?: string } }>;

function renderOptions(query: Query): RenderOptions {
  const meta = boolParam(query, 'meta');
  const attsSince = stringListParam(query, 'atts_since');
  return {
    revs: boolParam(query, 'revs'),
    revsInfo: meta || boolParam(query, 'revs_info'),
    conflicts: meta || boolParam(query, 'conflicts'),
    deletedConflicts: meta || boolParam(query, 'deleted_conflicts'),
    attachments: boolParam(query, 'attachments'),
    ...(attsSince === undefined ? {} : { attsSince }),
  };
}

/** `?rev=`, validated: a malformed revision is a 400, as in CouchDB. */
function revParam(query: Query): string | undefined {
  const rev = stringParam(query, 'rev');
  if (rev !== undefined && parseRev(rev) === null) throw badRequest('Invalid rev format', 'bad_request');
  return rev;
}

/** The revision a write names: `?rev=` or `If-Match`. */
function requestedRev(req: FastifyRequest): string | undefined {
  const rev = revParam(req.query as Query);
  if (rev !== undefined) return rev;
  const ifMatch = req.headers['if-match'];
  return typeof ifMatch === 'string' ? ifMatch.replace(/^"|"$/g, '') : undefined;
}

function newEditsParam(query: Query): boolean {
  return boolParam(query, 'new_edits', true);
}

function requireJsonBody(req: FastifyRequest): unknown {
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/')) {
    throw new DoppelError(
      ErrorKind.UnsupportedMediaType,
      'multipart document uploads are not supported; send JSON with base64 attachment data',
    );
  }
  return jsonBody(req);
}

export function registerDocumentRoutes(app: FastifyInstance, deps: HttpDependencies): void {
  /** `/db/_local%2Fx` arrives here as the id `_local/x`: serve it as the local document it names. */
  const localId = (req: DocRequest): string | undefined =>
    req.params.ddoc === undefined && req.params.id?.startsWith('_local/') === true
      ? req.params.id.slice(7)
      : undefined;

  const docId = (req: DocRequest): string =>
    req.params.ddoc !== undefined ? `_design/${req.params.ddoc}` : req.params.id!;

  const getDoc = async (req: DocRequest, reply: FastifyReply) => {
    const { db } = req.params;
    const id = docId(req);
    const query = req.query as Query;
    const render = renderOptions(query);
    const openRevsRaw = stringParam(query, 'open_revs');
    if (openRevsRaw !== undefined) {
      let revs: string[] | 'all';
      if (openRevsRaw === 'all') revs = 'all';
      else {
        const parsed = jsonParam(query, 'open_revs');
        if (!Array.isArray(parsed) || !parsed.every((r) => typeof r === 'string')) {
          throw badRequest('open_revs must be "all" or a JSON array of revisions', 'bad_request');
        }
        revs = parsed;
      }
      const results = deps.docs.openRevs(req.ctx, db, id, revs, boolParam(query, 'latest'), render);
      if (revs === 'all' && results.length === 0) throw new DoppelError(ErrorKind.NotFound, 'missing');
      return sendJson(
        reply,
        200,
        `[${results.map((r) => ('ok' in r ? `{"ok":${r.ok}}` : `{"missing":${JSON.stringify(r.missing)}}`)).join(',')}]`,
      );
    }
    const json = deps.docs.get(req.ctx, db, id, revParam(query), render);
    const rev = /"_rev":"([^"]+)"/.exec(json)?.[1];
    if (rev !== undefined) {
      void reply.header('etag', `"${rev}"`);
      if (req.headers['if-none-match'] === `"${rev}"`) return reply.code(304).send();
    }
    return sendJson(reply, 200, json);
  };

  const putDoc = async (req: DocRequest, reply: FastifyReply) => {
    const query = req.query as Query;
    const body = requireJsonBody(req);
    const rev = revParam(query);
    let doc = body;
    if (rev !== undefined && typeof body === 'object' && body !== null && !Array.isArray(body)) {
      const bodyRev = (body as { _rev?: unknown })._rev;
      if (bodyRev !== undefined && bodyRev !== rev) {
        throw badRequest(
          'Document rev from request body and query string have different values',
          'bad_request',
        );
      }
      doc = { ...body, _rev: rev };
    }
    const result = await deps.docs.putDoc(req.ctx, req.params.db, doc, newEditsParam(query), docId(req));
    const status = stringParam(query, 'batch') === 'ok' ? 202 : 201;
    return reply
      .code(status)
      .header('etag', `"${result.rev}"`)
      .send({ ok: true, id: result.id, rev: result.rev });
  };

  const deleteDoc = async (req: DocRequest, reply: FastifyReply) => {
    const rev = requestedRev(req);
    const doc = rev === undefined ? { _deleted: true } : { _rev: rev, _deleted: true };
    const result = await deps.docs.putDoc(req.ctx, req.params.db, doc, true, docId(req));
    return reply
      .code(200)
      .header('etag', `"${result.rev}"`)
      .send({ ok: true, id: result.id, rev: result.rev });
  };

  const headDoc = async (req: DocRequest, reply: FastifyReply) => {
    const json = deps.docs.get(req.ctx, req.params.db, docId(req), revParam(req.query as Query), {});
    const rev = /"_rev":"([^"]+)"/.exec(json)?.[1];
    return reply.code(200).header('etag', `"${rev}"`).header('content-type', 'application/json').send();
  };

  for (const path of ['/:db/:id', '/:db/_design/:ddoc']) {
    app.get(path, async (req: DocRequest, reply) => {
      const local = localId(req);
      return local === undefined ? getDoc(req, reply) : getLocal(req, reply, local);
    });
    app.head(path, headDoc);
    app.put(path, async (req: DocRequest, reply) => {
      const local = localId(req);
      return local === undefined ? putDoc(req, reply) : putLocal(req, reply, local);
    });
    app.delete(path, async (req: DocRequest, reply) => {
      const local = localId(req);
      return local === undefined ? deleteDoc(req, reply) : deleteLocal(req, reply, local);
    });
  }

  // _local documents: never in _changes, no revision tree.
  // _local documents: never in _changes, no revision tree, revisions `0-N`.
  const getLocal = (req: DocRequest, reply: FastifyReply, id: string) =>
    sendJson(reply, 200, deps.docs.getLocal(req.ctx, req.params.db, id));
  const putLocal = async (req: DocRequest, reply: FastifyReply, id: string) => {
    const rev = await deps.docs.putLocal(
      req.ctx,
      req.params.db,
      id,
      requireJsonBody(req),
      false,
      stringParam(req.query as Query, 'rev'),
    );
    return reply.code(201).send({ ok: true, id: `_local/${id}`, rev });
  };
  const deleteLocal = async (req: DocRequest, reply: FastifyReply, id: string) => {
    const ifMatch = req.headers['if-match'];
    const given =
      stringParam(req.query as Query, 'rev') ??
      (typeof ifMatch === 'string' ? ifMatch.replace(/^"|"$/g, '') : undefined);
    const rev = await deps.docs.putLocal(req.ctx, req.params.db, id, {}, true, given);
    return reply.send({ ok: true, id: `_local/${id}`, rev });
  };
  app.get('/:db/_local/:id', async (req: DocRequest, reply) => getLocal(req, reply, req.params.id!));
  app.put('/:db/_local/:id', async (req: DocRequest, reply) => putLocal(req, reply, req.params.id!));
  app.delete('/:db/_local/:id', async (req: DocRequest, reply) => deleteLocal(req, reply, req.params.id!));

  // Attachments.
  const attachmentName = (req: DocRequest): string => {
    const name = req.params['*'];
    if (name === undefined || name === '') throw badRequest('Attachment name is missing', 'bad_request');
    return name;
  };
  const getAttachment = async (req: DocRequest, reply: FastifyReply) => {
    const att = deps.docs.attachment(
      req.ctx,
      req.params.db,
      docId(req),
      attachmentName(req),
      revParam(req.query as Query),
    );
    void reply
      .header('etag', `"${att.digest.slice(4)}"`)
      .header('content-md5', att.digest.slice(4))
      .type(att.contentType);
    return req.method === 'HEAD'
      ? reply.header('content-length', att.bytes.length).send()
      : reply.send(att.bytes);
  };
  const putAttachment = async (req: DocRequest, reply: FastifyReply) => {
    const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const contentType = req.headers['content-type'] ?? 'application/octet-stream';
    const result = await deps.docs.putAttachment(
      req.ctx,
      req.params.db,
      docId(req),
      attachmentName(req),
      requestedRev(req),
      contentType,
      bytes,
    );
    return reply
      .code(201)
      .header('etag', `"${result.rev}"`)
      .send({ ok: true, id: result.id, rev: result.rev });
  };
  const deleteAttachment = async (req: DocRequest) => {
    const result = await deps.docs.deleteAttachment(
      req.ctx,
      req.params.db,
      docId(req),
      attachmentName(req),
      requestedRev(req),
    );
    return { ok: true, id: result.id, rev: result.rev };
  };
  for (const path of ['/:db/:id/*', '/:db/_design/:ddoc/*']) {
    app.get(path, getAttachment);
    app.head(path, getAttachment);
    app.put(path, putAttachment);
    app.delete(path, deleteAttachment);
  }
}
