/**
 * A stand-in server that does (almost) nothing, to measure the ceiling of the
 * bench client itself (`bulk-load.ts --calibrate`): `_bulk_docs` keeps the
 * raw bodies and acknowledges their ids, `_changes` answers from responses
 * built before the reads and cached. Not a database: only what the bench sends. Run as a child process: `node --import tsx null-server.ts`;
 * it prints `{"port":N}` on stdout once listening on 127.0.0.1.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/** The raw `_bulk_docs` bodies, kept unparsed until `_changes` needs them. */
const bodies: Buffer[] = [];
let rows: string[] | null = null;
const changesCache = new Map<string, Buffer>();

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string | Buffer): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
  res.end(bytes);
}

/** One `_changes` row per stored document, built once (on the first `GET /db` after a load). */
function allRows(): string[] {
  if (rows === null) {
    rows = [];
    for (const body of bodies) {
      for (const doc of (JSON.parse(body.toString('utf8')) as { docs: { _id: string }[] }).docs) {
        const withRev = JSON.stringify({ ...doc, _rev: '1-0' });
        rows.push(
          `{"seq":${rows.length + 1},"id":${JSON.stringify(doc._id)},"changes":[{"rev":"1-0"}],"doc":${withRev}}`,
        );
      }
    }
  }
  return rows;
}

function changes(since: number, limit: number): Buffer {
  const key = `${since}/${limit}`;
  let cached = changesCache.get(key);
  if (cached === undefined) {
    const all = allRows();
    const end = Math.min(all.length, since + limit);
    cached = Buffer.from(
      `{"results":[${all.slice(since, end).join(',\n')}],"last_seq":${end},"pending":${all.length - end}}\n`,
    );
    changesCache.set(key, cached);
  }
  return cached;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  if (req.method === 'GET' && path === '/') return send(res, 200, '{"couchdb":"Welcome"}');
  if (req.method === 'PUT' && /^\/[^/]+$/.test(path)) return send(res, 201, '{"ok":true}');
  if (req.method === 'GET' && /^\/[^/]+$/.test(path)) {
    // Build the rows (and the whole-feed response) here, before the bench times any `_changes`.
    const count = allRows().length;
    changes(0, Number.MAX_SAFE_INTEGER);
    return send(res, 200, `{"doc_count":${count}}`);
  }
  if (req.method === 'POST' && path.endsWith('/_bulk_docs')) {
    // Acknowledge without parsing: the ids are found by a scan of the raw body.
    const body = await readBody(req);
    bodies.push(body);
    rows = null;
    changesCache.clear();
    const out: string[] = [];
    for (const match of body.toString('utf8').matchAll(/"_id":("(?:[^"\\]|\\.)*")/g)) {
      out.push(`{"ok":true,"id":${match[1]},"rev":"1-0"}`);
    }
    return send(res, 201, `[${out.join(',')}]`);
  }
  if (req.method === 'GET' && path.endsWith('/_changes')) {
    const since = Number(url.searchParams.get('since') ?? '0');
    const limit = Number(url.searchParams.get('limit') ?? String(Number.MAX_SAFE_INTEGER));
    return send(res, 200, changes(since, limit));
  }
  return send(res, 404, '{"error":"not_found"}');
}

const server = createServer((req, res) => {
  handle(req, res).catch((err: unknown) => send(res, 500, JSON.stringify({ error: String(err) })));
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
