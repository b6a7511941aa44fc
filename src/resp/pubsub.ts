/**
 * Pub/Sub on this node: who listens on which channels, patterns and shard
 * channels, and the delivery of published messages into listeners' output.
 * Messages are not stored anywhere: a listener gets what is published while
 * it listens, as in Redis.
 */
import { globMatch } from '../engines/kv/glob.js';
import type { Client } from './client.js';

/** What a client listens on: channels (SUBSCRIBE), patterns (PSUBSCRIBE), shard channels (SSUBSCRIBE). */
export type ListenKind = 'channel' | 'pattern' | 'shard';

/** A client's own subscriptions, by name (latin1, so any bytes survive). */
export class Subscriptions {
  readonly channel = new Set<string>();
  readonly pattern = new Set<string>();
  readonly shard = new Set<string>();

  /** What SUBSCRIBE / PSUBSCRIBE and their UNSUBSCRIBEs report: channels and patterns together. */
  get count(): number {
    return this.channel.size + this.pattern.size;
  }

  /** True while RESP2 restricts the client to the subscription commands. */
  get listening(): boolean {
    return this.channel.size + this.pattern.size + this.shard.size > 0;
  }
}

const MESSAGE = Buffer.from('message');
const PMESSAGE = Buffer.from('pmessage');
const SMESSAGE = Buffer.from('smessage');

/** Hands a message to a listener: written into its output, which its connection then sends. */
function deliver(client: Client, parts: Buffer[]): void {
  if (client.gone.aborted) return;
  const reply = client.reply;
  reply.push(parts.length);
  for (const part of parts) reply.bulk(part);
  client.onOutput();
}

export class PubSubHub {
  readonly #byKind: Record<ListenKind, Map<string, Set<Client>>> = {
    channel: new Map(),
    pattern: new Map(),
    shard: new Map(),
  };

  /** Adds a subscription; true when it is new. */
  subscribe(client: Client, kind: ListenKind, name: Buffer): boolean {
    const id = name.toString('latin1');
    const own = client.subscriptions[kind];
    if (own.has(id)) return false;
    own.add(id);
    const listeners = this.#byKind[kind];
    let clients = listeners.get(id);
    if (clients === undefined) listeners.set(id, (clients = new Set()));
    clients.add(client);
    return true;
  }

  /** Removes a subscription; true when there was one. */
  unsubscribe(client: Client, kind: ListenKind, name: Buffer | string): boolean {
    const id = typeof name === 'string' ? name : name.toString('latin1');
    if (!client.subscriptions[kind].delete(id)) return false;
    const listeners = this.#byKind[kind];
    const clients = listeners.get(id);
    clients?.delete(client);
    if (clients?.size === 0) listeners.delete(id);
    return true;
  }

  /** A disconnected client stops listening. */
  drop(client: Client): void {
    for (const kind of ['channel', 'pattern', 'shard'] as const) {
      for (const id of [...client.subscriptions[kind]]) this.unsubscribe(client, kind, id);
    }
  }

  /**
   * Publishes `message` on `channel` (a shard channel with `shard`): returns
   * how many listeners receive it (one per matching pattern of a client too,
   * as Redis counts). `schedule` decides when they receive it: a message
   * published inside a storage write waits for that write's commit, so that
   * a listener never hears of data it cannot read yet.
   */
  publish(
    channel: Buffer,
    message: Buffer,
    shard: boolean,
    schedule: (deliverAll: () => void) => void,
  ): number {
    const id = channel.toString('latin1');
    // Delivered later (after a commit): the request's buffers are not ours to keep.
    channel = Buffer.from(channel);
    message = Buffer.from(message);
    const deliveries: [Client, Buffer[]][] = [];
    if (shard) {
      for (const client of this.#byKind.shard.get(id) ?? [])
        deliveries.push([client, [SMESSAGE, channel, message]]);
    } else {
      for (const client of this.#byKind.channel.get(id) ?? [])
        deliveries.push([client, [MESSAGE, channel, message]]);
      for (const [pattern, clients] of this.#byKind.pattern) {
        const patternBytes = Buffer.from(pattern, 'latin1');
        if (!globMatch(patternBytes, channel)) continue;
        for (const client of clients) deliveries.push([client, [PMESSAGE, patternBytes, channel, message]]);
      }
    }
    if (deliveries.length > 0) {
      schedule(() => {
        for (const [client, parts] of deliveries) deliver(client, parts);
      });
    }
    return deliveries.length;
  }

  /** The channels (or shard channels) with at least one listener, optionally matching a glob `pattern`. */
  activeChannels(kind: 'channel' | 'shard', pattern: Buffer | undefined): Buffer[] {
    const out: Buffer[] = [];
    for (const id of this.#byKind[kind].keys()) {
      const name = Buffer.from(id, 'latin1');
      if (pattern === undefined || globMatch(pattern, name)) out.push(name);
    }
    return out;
  }

  /** How many clients listen on `channel` (patterns not included, as PUBSUB NUMSUB counts). */
  listeners(kind: 'channel' | 'shard', channel: Buffer): number {
    return this.#byKind[kind].get(channel.toString('latin1'))?.size ?? 0;
  }

  /** How many distinct patterns are listened on (PUBSUB NUMPAT). */
  get patternCount(): number {
    return this.#byKind.pattern.size;
  }

  /** Distinct channels / shard channels with listeners (INFO). */
  count(kind: ListenKind): number {
    return this.#byKind[kind].size;
  }
}
