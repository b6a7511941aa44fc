/**
 * A minimal HTTP client for the benches: Node's `http` with a keep-alive
 * agent, request bodies given as ready Buffers, responses collected as raw
 * chunks (no decoding or parsing while a measurement runs).
 */
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as received, one Buffer per chunk. */
  readonly chunks: readonly Buffer[];
  readonly bytes: number;
}

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

export function bodyOf(res: RawResponse): Buffer {
  return res.chunks.length === 1 ? res.chunks[0] : Buffer.concat(res.chunks, res.bytes);
}

export function jsonOf(res: RawResponse): unknown {
  return JSON.parse(bodyOf(res).toString('utf8')) as unknown;
}

export class HttpClient {
  readonly baseUrl: string;
  readonly #host: string;
  readonly #port: number;
  readonly #agent: Agent;
  readonly #authorization: string | undefined;

  constructor(baseUrl: string, credentials: Credentials | undefined, maxSockets = 64) {
    const url = new URL(baseUrl);
    this.baseUrl = baseUrl;
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.#authorization =
      credentials === undefined
        ? undefined
        : `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
  }

  request(method: string, path: string, body?: Buffer): Promise<RawResponse> {
    const headers: OutgoingHttpHeaders = { accept: 'application/json' };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = body.length;
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: this.#host, port: this.#port, method, path, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            bytes += chunk.length;
          });
          res.once('error', reject);
          res.once('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, chunks, bytes }),
          );
        },
      );
      req.once('error', reject);
      req.end(body);
    });
  }

  /** A request whose status must be one of `ok`; its body parsed as JSON. */
  async json(method: string, path: string, ok: readonly number[], body?: Buffer): Promise<unknown> {
    const res = await this.request(method, path, body);
    if (!ok.includes(res.status)) {
      throw new Error(`${method} ${path}: HTTP ${res.status}: ${bodyOf(res).toString('utf8').slice(0, 500)}`);
    }
    return jsonOf(res);
  }

  close(): void {
    this.#agent.destroy();
  }
}
