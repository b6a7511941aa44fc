/**
 * SAVE, BGSAVE and LASTSAVE. Doppel writes no RDB file: every acknowledged
 * write is in the write-ahead log already, and on disk within
 * `max_unsynced_ms`. A save makes everything acknowledged so far durable at
 * once (the queued writes committed to LMDB, the disk synced), which is what
 * a backup or a snapshot of the machine taken after `SAVE` relies on. One
 * runs at a time, as in Redis.
 */
import type { Logger } from 'pino';

export class DiskSaves {
  readonly #persist: () => Promise<void>;
  readonly #log: Logger;
  /** Unix seconds of the last successful save; before any, the start (as Redis reports it). */
  lastSave = Math.floor(Date.now() / 1000);
  lastStatus: 'ok' | 'err' = 'ok';
  #running = false;

  constructor(persist: () => Promise<void>, log: Logger) {
    this.#persist = persist;
    this.#log = log;
  }

  get inProgress(): boolean {
    return this.#running;
  }

  /** Saves now; rejects (after logging why) when the disk refused. Never while another runs. */
  async run(by: string): Promise<void> {
    if (this.#running) throw new Error('a save is already running');
    this.#running = true;
    const started = performance.now();
    try {
      await this.#persist();
      this.lastSave = Math.floor(Date.now() / 1000);
      this.lastStatus = 'ok';
      this.#log.info(
        { by, ms: Math.round(performance.now() - started) },
        'saved: every acknowledged write is on disk',
      );
    } catch (err) {
      this.lastStatus = 'err';
      this.#log.error({ by, err }, 'save failed');
      throw err;
    } finally {
      this.#running = false;
    }
  }
}
