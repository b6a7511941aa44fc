/**
 * `Authorization: Basic …` parsing. Credentials are decoded as UTF-8 (RFC 7617's only allowed
 * charset); bytes that are not valid UTF-8 are treated as malformed rather than guessed at.
 */

const BASIC = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;

/**
 * The name and password from a Basic authorization header, or null when the header is absent,
 * uses another scheme, or is malformed (bad base64, no colon). The password is everything after
 * the first colon, so passwords may contain colons. `_:_` is CouchDB's "log me out" pair and
 * counts as no credentials. An empty name is returned as is: CouchDB then fails the lookup with
 * 401 rather than treating the request as anonymous.
 */
export function parseBasicAuth(header: string | undefined): { name: string; password: string } | null {
  if (typeof header !== 'string' || header.length > 16_384) return null;
  const match = BASIC.exec(header.trim());
  const encoded = match?.[1];
  if (encoded === undefined || encoded.length % 4 !== 0) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(encoded, 'base64'));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const name = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (name === '_' && password === '_') return null;
  return { name, password };
}

/** The header value a client would send; handy for tests and for the replicator. */
export function formatBasicAuth(name: string, password: string): string {
  return `Basic ${Buffer.from(`${name}:${password}`, 'utf8').toString('base64')}`;
}
