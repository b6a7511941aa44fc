/**
 * HttpEndpoint's HTTP behaviour against a scripted local server: 413 splits,
 * 429 with Retry-After, 5xx retries, the connection cap, bearer auth and
 * headers, gzip, a forward proxy (and SOCKS refused), the continuous feed's
 * stall detector, and close().
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DoppelError, ErrorKind } from '../../errors.js';
import type { ChangeEntry, FetchedDoc, Seq } from '../../engines/replication/endpoint.js';
import { HttpEndpoint } from './http-endpoint.js';
import { retryAfterMs } from './http-transport.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function listen(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.address() as AddressInfo).port };
}

function doc(id: string, extra: Record<string, unknown> = {}): FetchedDoc {
  return { _id: id, _rev: '1-a', _revisions: { start: 1, ids: ['a'] }, ...extra };
}

void describe('HttpEndpoint over HTTP', () => {
  let port: number;
  let server: ReturnType<typeof createServer>;
  let handler: Handler;
  let seen: Seen[];
  let open = 0;
  let maxOpen = 0;

  before(async () => {
    ({ server, port } = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        open++;
        maxOpen = Math.max(maxOpen, open);
        res.on('close', () => open--);
        handler(req, body, res);
      });
    }));
  });

  beforeEach(() => {
    seen = [];
    maxOpen = 0;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /** A normal (not continuous) feed from the start, `batchSize` rows per batch. */
  const normalFeed = (batchSize: number): Parameters<HttpEndpoint['changes']>[0] => ({
    since: 0,
    filter: { kind: 'none' },
    winningRevsOnly: false,
    batchSize,
    continuous: false,
    heartbeatMs: 10_000,
    signal: new AbortController().signal,
  });

  const endpoint = (options: ConstructorParameters<typeof HttpEndpoint>[1] = {}): HttpEndpoint =>
    new HttpEndpoint({ url: `http://127.0.0.1:${port}/db`, auth: { bearer: 'tok-123' } }, options);

  void it('sends JSON headers and a bearer token; reads gzip replies', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify({ db_name: 'db', update_seq: 7, instance_start_time: '0' })));
    };
    const ep = endpoint();
    try {
      const info = await ep.info();
      assert.equal(info.update_seq, 7);
      const h = seen[0]?.headers;
      assert.equal(h?.['authorization'], 'Bearer tok-123');
      assert.equal(h?.['accept'], 'application/json');
      assert.match(String(h?.['accept-encoding']), /gzip/);
      assert.match(String(h?.['connection'] ?? 'keep-alive'), /keep-alive/i);
      assert.equal(ep.identity.includes('tok-123'), false);
    } finally {
      await ep.close();
    }
  });

  void it('splits a _bulk_docs batch on 413, down to the one document that is too large', async () => {
    const written: string[] = [];
    handler = (_req, body, res) => {
      const { docs } = JSON.parse(body) as { docs: FetchedDoc[] };
      if (docs.length > 3 || docs.some((d) => d['big'] === true))
        return json(res, 413, { error: 'too_large', reason: 'too large' });
      for (const d of docs) written.push(d._id);
      json(res, 201, []);
    };
    const ep = endpoint();
    try {
      const docs = Array.from({ length: 10 }, (_, i) => doc(`d${i}`, i === 6 ? { big: true } : {}));
      const failures = await ep.bulkDocs(docs);
      assert.deepEqual(
        failures.map((f) => [f.id, f.error]),
        [['d6', 'too_large']],
      );
      assert.deepEqual(written.sort(), ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd7', 'd8', 'd9']);
    } finally {
      await ep.close();
    }
  });

  void it('waits out a 429 Retry-After, then succeeds', async () => {
    let calls = 0;
    handler = (_req, _body, res) => {
      calls++;
      if (calls === 1) return json(res, 429, { error: 'too_many_requests' }, { 'retry-after': '1' });
      json(res, 200, { ok: true, rev: '0-1' });
    };
    const ep = endpoint();
    try {
      const t0 = Date.now();
      assert.equal(await ep.putLocal('x', {}), '0-1');
      assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
      assert.equal(calls, 2);
    } finally {
      await ep.close();
    }
    assert.equal(retryAfterMs('3'), 3000);
    assert.equal(retryAfterMs(new Date(Date.now() + 5000).toUTCString(), Date.now()) !== undefined, true);
    assert.equal(retryAfterMs(undefined), undefined);
  });

  void it('retries 5xx up to retries_per_request, then fails as unavailable', async () => {
    let calls = 0;
    handler = (_req, _body, res) => {
      calls++;
      if (calls <= 2) return json(res, 503, { error: 'unavailable', reason: 'busy' });
      json(res, 200, {});
    };
    const ep = endpoint({ retriesPerRequest: 2 });
    try {
      assert.deepEqual(await ep.revsDiff({ a: ['1-a'] }), {});
      assert.equal(calls, 3);
      calls = 0;
      handler = (_req, _body, res) => {
        calls++;
        json(res, 500, { error: 'boom', reason: 'always' });
      };
      await assert.rejects(ep.revsDiff({ a: ['1-a'] }), (err: unknown) => {
        return err instanceof DoppelError && err.kind === ErrorKind.Unavailable;
      });
      assert.equal(calls, 3);
    } finally {
      await ep.close();
    }
  });

  void it('never opens more than http_connections connections', async () => {
    handler = (_req, _body, res) => setTimeout(() => json(res, 200, {}), 50);
    const ep = endpoint({ httpConnections: 2 });
    try {
      await Promise.all(Array.from({ length: 6 }, (_, i) => ep.revsDiff({ [`d${i}`]: ['1-a'] })));
      assert.equal(maxOpen, 2);
    } finally {
      await ep.close();
    }
  });

  void it('goes through an http proxy, and refuses socks proxies', async () => {
    const proxied: string[] = [];
    const { server: proxyServer, port: proxyPort } = await listen((req, res) => {
      // A forward proxy: the request line carries the absolute URL.
      proxied.push(req.url ?? '');
      const target = new URL(req.url ?? '');
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname + target.search,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    handler = (_req, _body, res) => json(res, 200, { db_name: 'db', update_seq: 1 });
    const ep = endpoint({ proxy: `http://127.0.0.1:${proxyPort}` });
    try {
      assert.equal((await ep.info()).db_name, 'db');
      assert.deepEqual(proxied, [`http://127.0.0.1:${port}/db`]);
    } finally {
      await ep.close();
      proxyServer.closeAllConnections();
      proxyServer.close();
    }
    assert.throws(
      () => endpoint({ proxy: 'socks5://127.0.0.1:1080' }),
      (err: unknown) => err instanceof DoppelError && /socks proxies are not supported/.test(err.reason),
    );
  });

  void it('reconnects a continuous feed that went silent, from the last seq', async () => {
    handler = (req, _body, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      if (url.searchParams.get('feed') === 'normal') return json(res, 200, { results: [], last_seq: 0 });
      const since = url.searchParams.get('since');
      res.writeHead(200, { 'content-type': 'application/json' });
      // The first connection sends one row and then nothing at all (no heartbeats): a stall.
      if (since === '0') res.write('{"seq":1,"id":"a","changes":[{"rev":"1-a"}]}\n');
      else res.write('{"seq":2,"id":"b","changes":[{"rev":"1-b"}]}\n');
    };
    const ep = endpoint();
    const stop = new AbortController();
    const got: [Seq, string][] = [];
    try {
      const t0 = Date.now();
      const done = ep.changes(
        {
          since: 0,
          filter: { kind: 'none' },
          winningRevsOnly: false,
          batchSize: 100,
          continuous: true,
          heartbeatMs: 200,
          signal: stop.signal,
        },
        async (rows: readonly ChangeEntry[]) => {
          for (const r of rows) got.push([r.seq, r.id]);
          if (got.length === 2) stop.abort();
        },
      );
      await done;
      const ms = Date.now() - t0;
      assert.deepEqual(got, [
        [1, 'a'],
        [2, 'b'],
      ]);
      const feeds = seen.filter((s) => s.url.includes('feed=continuous'));
      assert.equal(feeds.length, 2);
      assert.match(feeds[1]?.url ?? '', /since=1/);
      // Three heartbeats of silence (600 ms) plus the first reconnect delay, well under the 30 s default.
      assert.ok(ms >= 550 && ms < 3000, `reconnected after ${ms} ms`);
    } finally {
      await ep.close();
    }
  });

  void it('fails a continuous feed after retries_per_request reconnections in a row (the job then crashes)', async () => {
    handler = (req, _body, res) => {
      if (req.url?.includes('feed=normal') === true) return json(res, 200, { results: [], last_seq: 0 });
      json(res, 503, { error: 'unavailable', reason: 'down' });
    };
    const ep = endpoint({ retriesPerRequest: 2, connectionTimeout: 3000 });
    try {
      await assert.rejects(
        ep.changes(
          {
            since: 0,
            filter: { kind: 'none' },
            winningRevsOnly: false,
            batchSize: 10,
            continuous: true,
            heartbeatMs: 10_000,
            signal: new AbortController().signal,
          },
          async () => undefined,
        ),
        (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.Unavailable,
      );
      const feeds = seen.filter((s) => s.url.includes('feed=continuous'));
      assert.equal(feeds.length, 3);
      // connection_timeout / 3 caps the heartbeat asked for, so a stall is caught within one timeout.
      assert.match(feeds[0]?.url ?? '', /heartbeat=1000/);
    } finally {
      await ep.close();
    }
  });

  void it('reads a normal feed in one streamed request and resumes it after a cut from the last batch', async () => {
    const row = (n: number): string => JSON.stringify({ seq: n, id: `d${n}`, changes: [{ rev: `1-${n}` }] });
    let calls = 0;
    handler = (req, _body, res) => {
      calls++;
      const since = Number(new URL(req.url ?? '', 'http://x').searchParams.get('since'));
      res.writeHead(200, { 'content-type': 'application/json' });
      if (calls === 1) {
        // Five rows, then the connection dies mid-reply.
        res.write(`{"results":[\n${[1, 2, 3, 4, 5].map(row).join(',\n')},\n{"seq":6,"id":"d6","ch`);
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      const rows = [1, 2, 3, 4, 5, 6, 7].filter((n) => n > since);
      res.end(`{"results":[\n${rows.map(row).join(',\n')}\n],\n"last_seq":7,"pending":0}\n`);
    };
    const ep = endpoint();
    const batches: [Seq, string[]][] = [];
    try {
      const result = await ep.changes(normalFeed(2), async (rows, lastSeq) => {
        batches.push([lastSeq, rows.map((r) => r.id)]);
      });
      assert.equal(result.lastSeq, 7);
      assert.deepEqual(batches, [
        [2, ['d1', 'd2']],
        [4, ['d3', 'd4']],
        [6, ['d5', 'd6']],
        [7, ['d7']],
      ]);
      const feeds = seen.filter((s) => s.url.includes('_changes'));
      assert.equal(feeds.length, 2);
      assert.doesNotMatch(feeds[0]?.url ?? '', /limit=/);
      assert.match(feeds[1]?.url ?? '', /since=4/);
    } finally {
      await ep.close();
    }
  });

  void it(
    'resumes a gzip-encoded normal feed cut mid-reply (it used to wait forever)',
    { timeout: 20_000 },
    async () => {
      const row = (n: number): string =>
        JSON.stringify({ seq: n, id: `d${n}`, changes: [{ rev: `1-${n}` }] });
      let calls = 0;
      handler = (req, _body, res) => {
        calls++;
        const since = Number(new URL(req.url ?? '', 'http://x').searchParams.get('since'));
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        if (calls === 1) {
          res.write(gzipSync(`{"results":[\n${[1, 2, 3].map(row).join(',\n')},\n{"seq":4,"id":"d4","ch`));
          setTimeout(() => res.socket?.destroy(), 50);
          return;
        }
        const rows = [1, 2, 3, 4, 5].filter((n) => n > since);
        res.end(gzipSync(`{"results":[\n${rows.map(row).join(',\n')}\n],\n"last_seq":5,"pending":0}\n`));
      };
      const ep = endpoint();
      const ids: string[] = [];
      try {
        const result = await ep.changes(normalFeed(1), async (rows) => {
          ids.push(...rows.map((r) => r.id));
        });
        assert.equal(result.lastSeq, 5);
        assert.deepEqual(ids, ['d1', 'd2', 'd3', 'd4', 'd5']);
        assert.equal(calls, 2);
      } finally {
        await ep.close();
      }
    },
  );

  void it('falls back to open_revs without _bulk_get, and refuses a multipart reply instead of losing docs', async () => {
    handler = (req, _body, res) => {
      if (req.url?.startsWith('/db/_bulk_get') === true) return json(res, 404, { error: 'not_found' });
      if (req.url?.startsWith('/db/a?') === true)
        return json(res, 200, [{ ok: { _id: 'a', _rev: '1-a', _revisions: { start: 1, ids: ['a'] } } }]);
      res.writeHead(200, { 'content-type': 'multipart/mixed; boundary="x"' });
      res.end('--x\r\ncontent-type: application/json\r\n\r\n{}\r\n--x--');
    };
    const ep = endpoint();
    try {
      const got = await ep.bulkGet([{ id: 'a', rev: '1-a' }]);
      assert.deepEqual(
        got.docs.map((d) => d._id),
        ['a'],
      );
      assert.equal(seen[1]?.headers['accept'], 'application/json');
      await assert.rejects(
        ep.bulkGet([{ id: 'b', rev: '1-b' }]),
        (err: unknown) => err instanceof DoppelError && err.kind === ErrorKind.UnsupportedMediaType,
      );
    } finally {
      await ep.close();
    }
  });

  void it('close() fails later requests at once', async () => {
    handler = (_req, _body, res) => json(res, 200, { db_name: 'db' });
    const ep = endpoint();
    await ep.info();
    await ep.close();
    await assert.rejects(ep.info(), (err: unknown) => err instanceof DoppelError);
  });
});
