/**
 * Reads a streaming HTTP response (continuous `_changes`, eventsource,
 * `_db_updates`) line by line, with a bounded wait for each line.
 */
export class LineStream {
  readonly status: number;
  readonly headers: Headers;
  readonly #controller: AbortController;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';
  #done = false;

  private constructor(response: Response, controller: AbortController) {
    this.status = response.status;
    this.headers = response.headers;
    this.#controller = controller;
    if (response.body === null) throw new Error('response has no body');
    this.#reader = response.body.getReader();
  }

  static async open(url: string, headers: Record<string, string>): Promise<LineStream> {
    const controller = new AbortController();
    const response = await fetch(url, { headers, signal: controller.signal });
    return new LineStream(response, controller);
  }

  /** The next line (without its newline); rejects after `timeoutMs` or at the end of the stream. */
  async line(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const newline = this.#buffer.indexOf('\n');
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      if (this.#done) throw new Error(`stream ended; unterminated rest: ${JSON.stringify(this.#buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no complete line within ${timeoutMs} ms; buffered: ${JSON.stringify(this.#buffer)}`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), left);
      });
      const chunk = await Promise.race([this.#reader.read(), timeout]);
      clearTimeout(timer);
      if (chunk === 'timeout') continue;
      if (chunk.done) this.#done = true;
      else this.#buffer += this.#decoder.decode(chunk.value, { stream: true });
    }
  }

  /** Lines until one satisfies `match` (returned), skipping the others; bounded overall. */
  async until(
    match: (line: string) => boolean,
    timeoutMs = 10_000,
  ): Promise<{ line: string; skipped: string[] }> {
    const deadline = Date.now() + timeoutMs;
    const skipped: string[] = [];
    for (;;) {
      const line = await this.line(Math.max(1, deadline - Date.now()));
      if (match(line)) return { line, skipped };
      skipped.push(line);
    }
  }

  /** Reads to the end of the stream (bounded). */
  async rest(timeoutMs = 10_000): Promise<string[]> {
    const lines: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        lines.push(await this.line(Math.max(1, deadline - Date.now())));
      } catch (err) {
        if (this.#done) {
          if (this.#buffer !== '') lines.push(this.#buffer);
          return lines;
        }
        throw err;
      }
    }
  }

  close(): void {
    this.#controller.abort();
    this.#reader.cancel().catch(() => undefined);
  }
}
