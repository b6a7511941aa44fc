/**
 * Reading a peer's reply body with a ceiling: a peer (or anything answering at its
 * address) must not be able to make this node hold more than it chose to.
 */
interface ReplyBody extends AsyncIterable<Buffer> {
  destroy(): unknown;
}

/** The body's bytes, or null (the body destroyed) once it passes `maxBytes`. */
export async function readCapped(body: ReplyBody, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
