/**
 * One auto-follow rule at work: it lists the leader's databases, starts a
 * follower for every one matching the rule's pattern that has none yet, and
 * then waits on the leader's `_db_updates` (longpoll) so a database created
 * later is followed within moments; without news it lists again every poll
 * interval, which also retries the names that failed.
 */
import type { Logger } from 'pino';
import { asDoppelError } from '../../errors.js';
import { abortableSleep } from './abortable-sleep.js';
import type { AutoFollowRuleRecord } from './follower-record.js';
import type { LeaderClient } from './leader-client.js';
import { compilePattern, followerName } from './wildcard.js';

export interface AutoFollowCounters {
  num_success_start_replication: number;
  num_failed_start_replication: number;
  num_failed_leader_calls: number;
  failed_indices: string[];
  /** Epoch ms of the last listing of the leader; 0 before the first. */
  last_execution_time: number;
}

export interface AutoFollowHost {
  readonly log: Logger;
  leaderClient(alias: string): LeaderClient;
  /** Whether a follower (in any state) already has this name, so the rule leaves it alone. */
  hasFollower(name: string): boolean;
  startForRule(rule: AutoFollowRuleRecord, leaderIndex: string, follower: string): Promise<void>;
}

const LEADER_RETRY_MS = 1_000;

export class AutoFollowRunner {
  readonly rule: AutoFollowRuleRecord;
  readonly counters: AutoFollowCounters;
  lastError: string | null = null;
  readonly #host: AutoFollowHost;
  readonly #abort = new AbortController();
  readonly #matches: (name: string) => boolean;
  #loop: Promise<void> | undefined;

  /** `counters`: those of the runner this one continues (the same rule, run again after a hold). */
  constructor(host: AutoFollowHost, rule: AutoFollowRuleRecord, counters?: AutoFollowCounters) {
    this.#host = host;
    this.rule = rule;
    this.counters =
      counters === undefined
        ? {
            num_success_start_replication: 0,
            num_failed_start_replication: 0,
            num_failed_leader_calls: 0,
            failed_indices: [],
            last_execution_time: 0,
          }
        : { ...counters, failed_indices: [...counters.failed_indices] };
    this.#matches = compilePattern(rule.pattern);
  }

  start(): void {
    this.#loop ??= this.#run().catch((err: unknown) => {
      this.#host.log.error({ err, rule: this.rule.name }, 'auto-follow rule loop failed');
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let since = 0;
    let lastScan = 0;
    let scanNow = true;
    while (!signal.aborted) {
      try {
        const client = this.#host.leaderClient(this.rule.leaderAlias);
        if (scanNow || Date.now() - lastScan >= this.rule.pollIntervalMs) {
          lastScan = Date.now();
          await this.#scan(await client.allDbs(signal));
          this.counters.last_execution_time = Date.now();
        }
        const wait = Math.max(1, this.rule.pollIntervalMs - (Date.now() - lastScan));
        const page = await client.dbUpdates(since, wait, signal);
        // `_db_updates` since 0 replays history: only what happens after the first listing counts.
        scanNow = since > 0 && page.results.some((u) => u.type === 'created' && this.#matches(u.db_name));
        since = page.last_seq;
        this.lastError = null;
      } catch (err) {
        if (signal.aborted) return;
        this.counters.num_failed_leader_calls++;
        this.lastError = asDoppelError(err).reason;
        await abortableSleep(Math.min(LEADER_RETRY_MS, this.rule.pollIntervalMs), signal);
        scanNow = true;
      }
    }
  }

  async #scan(leaderDbs: readonly string[]): Promise<void> {
    for (const leaderIndex of leaderDbs) {
      if (this.#abort.signal.aborted) return;
      if (!this.#matches(leaderIndex)) continue;
      const follower = followerName(this.rule.followerIndexPattern, leaderIndex);
      if (this.#host.hasFollower(follower)) continue;
      try {
        await this.#host.startForRule(this.rule, leaderIndex, follower);
        this.counters.num_success_start_replication++;
        this.counters.failed_indices = this.counters.failed_indices.filter((n) => n !== leaderIndex);
      } catch (err) {
        this.counters.num_failed_start_replication++;
        if (!this.counters.failed_indices.includes(leaderIndex))
          this.counters.failed_indices.push(leaderIndex);
        this.#host.log.warn(
          { rule: this.rule.name, leader_index: leaderIndex, err: asDoppelError(err).reason },
          'auto-follow could not start a follower',
        );
      }
    }
  }
}
