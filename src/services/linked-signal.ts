/**
 * A signal that aborts when one of `sources` does, until `unlink()` lets go of them.
 *
 * Services use this, not `AbortSignal.any`: on Node 20 every signal `any` makes stays
 * referenced from its sources for as long as those live (~45 bytes each, ~1.2 KB while a
 * listener is attached), and a service's sources (a job's, a link's stop signal) live for
 * days.
 */
export function linkedSignal(...sources: AbortSignal[]): {
  readonly signal: AbortSignal;
  readonly unlink: () => void;
} {
  const linked = new AbortController();
  const aborted = sources.find((source) => source.aborted);
  if (aborted !== undefined) {
    linked.abort(aborted.reason);
    return { signal: linked.signal, unlink: () => undefined };
  }
  const onAbort = (event: Event): void => {
    unlink();
    linked.abort((event.target as AbortSignal).reason);
  };
  const unlink = (): void => {
    for (const source of sources) source.removeEventListener('abort', onAbort);
  };
  for (const source of sources) source.addEventListener('abort', onAbort, { once: true });
  return { signal: linked.signal, unlink };
}
