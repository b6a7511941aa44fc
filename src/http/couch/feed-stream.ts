import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { closeSignal } from './server-routes.js';

export interface FeedLine {
  readonly seq: number;
  readonly json: string;
}

export interface FeedOptions {
  readonly eventsource: boolean;
  /** Send a keep-alive every this many ms (a newline, or an SSE comment). */
  readonly heartbeatMs: number | undefined;
  /** Without heartbeats: end the feed after this long without a change. */
  readonly timeoutMs: number | undefined;
  readonly since: number;
  readonly limit: number;
  next(after: number, max: number): Promise<{ lines: FeedLine[]; last: number }>;
  wait(after: number, signal: AbortSignal): Promise<void>;
  /** The closing line of a continuous feed. */
  end(last: number): string;
}

/**
 * A continuous or eventsource feed: rows as they commit, heartbeats while
 * idle, and an end line when the limit or the idle timeout is reached.
 * Backpressure: the next page is read only once the socket has drained.
 */
export async function feedStream(reply: FastifyReply, options: FeedOptions): Promise<void> {
  void reply.hijack();
  const res = reply.raw;
  const headers: Record<string, string> = {
    'content-type': options.eventsource ? 'text/event-stream' : 'application/json',
    'cache-control': 'must-revalidate',
  };
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (typeof value === 'string') headers[name] = value;
  }
  res.writeHead(200, headers);
  const closed = closeSignal(reply.raw);
  const write = async (text: string): Promise<void> => {
    if (closed.aborted) return;
    if (!res.write(text)) await drainedOrClosed(res);
  };
  const heartbeat =
    options.heartbeatMs === undefined
      ? undefined
      : setInterval(() => {
          if (!closed.aborted) res.write(options.eventsource ? 'event: heartbeat\ndata: \n\n' : '\n');
        }, options.heartbeatMs);
  let after = options.since;
  let sent = 0;
  try {
    for (;;) {
      const page = await options.next(after, options.limit - sent);
      for (const line of page.lines) {
        await write(options.eventsource ? `data: ${line.json}\nid: ${line.seq}\n\n` : `${line.json}\n`);
        sent++;
      }
      after = page.last;
      if (sent >= options.limit || closed.aborted) break;
      if (page.lines.length > 0) continue;
      const idle = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
      await options.wait(after, idle === undefined ? closed : AbortSignal.any([closed, idle]));
      if (closed.aborted || idle?.aborted === true) break;
    }
    if (!options.eventsource) await write(`${options.end(after)}\n`);
  } finally {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    res.end();
  }
}

/** After a write that filled the socket: resolves when it drains, or when the client is gone (it never will). */
export function drainedOrClosed(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
