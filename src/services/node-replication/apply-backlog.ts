/**
 * What a replica link received but has not applied yet, in bytes. Past the limit the link
 * reads no more (the primary then holds the stream, as it would for a slow Redis replica)
 * until half of it has been applied: memory stays bounded however fast the primary sends.
 */
export class ApplyBacklog {
  readonly #limit: number;
  readonly #onCaughtUp: () => void;
  #bytes = 0;
  #held = false;

  /** `onCaughtUp`: reading may resume. */
  constructor(limit: number, onCaughtUp: () => void) {
    this.#limit = limit;
    this.#onCaughtUp = onCaughtUp;
  }

  /** Received `bytes` more; false when the link should stop reading. */
  add(bytes: number): boolean {
    this.#bytes += bytes;
    if (this.#bytes > this.#limit) this.#held = true;
    return !this.#held;
  }

  /** Applied (or dropped) `bytes`. */
  done(bytes: number): void {
    this.#bytes -= bytes;
    if (this.#held && this.#bytes <= this.#limit / 2) {
      this.#held = false;
      this.#onCaughtUp();
    }
  }
}

/** The backlog a replica link allows before it stops reading. */
export const APPLY_BACKLOG_BYTES = 64 * 1024 * 1024;
