/**
 * Follower databases (OpenSearch cross-cluster replication on Doppel
 * databases): the relationship, its lifecycle and its views. What the
 * OpenSearch front door calls. Each follower runs under its own small
 * supervisor (`Follower`); auto-follow rules under `AutoFollowRunner`.
 *
 * Who may act: without `use_roles`, server admins only; with them, callers
 * holding the follower role (or admins), and the leader database must admit
 * the leader role. Every call goes to the follower's node.
 */
import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import { validateDatabaseName } from '../../engines/docs/database-record.js';
import { badRequest, DoppelError, ErrorKind, forbidden } from '../../errors.js';
import type { Storage } from '../../storage/environment.js';
import { isServerAdmin, serverAdminContext, type UserContext } from '../auth/user-context.js';
import type { DocumentService } from '../docs/document-service.js';
import type { Remote, RemoteRegistry } from '../remotes/remote-registry.js';
import type { ReplicationState, ReplicationStatus, StatusBoard } from '../replications/status-board.js';
import { AutoFollowRunner, type AutoFollowCounters } from './autofollow-runner.js';
import type { AutoFollowRuleRecord, FollowerRecord, UseRoles } from './follower-record.js';
import {
  describeOverrides,
  parseDurationMs,
  parseTuningOverrides,
  type FollowerTuning,
  type TuningOverrides,
} from './follower-settings.js';
import {
  checkLeaderRole,
  Follower,
  isFollowerReadOnly,
  readOnlyReason,
  type FollowerHost,
  type FollowerSnapshot,
} from './follower.js';
import { LeaderClient } from './leader-client.js';
import { LEADER_INDEX_PLACEHOLDER, compilePattern, followerName } from './wildcard.js';

export interface FollowerServiceOptions {
  readonly nodeId: string;
  readonly defaults: FollowerTuning;
  readonly connection: FollowerHost['connection'];
  /** Default poll interval of auto-follow rules, in ms. */
  readonly autofollowPollMs: number;
  /** Roles an admin made follower roles: their holders may name them in `use_roles`. */
  readonly followerRoles: readonly string[];
}

type Json = Record<string, unknown>;

const INTERNAL = serverAdminContext('_followers');
const AUTOFOLLOW_POLL_SETTING = 'plugins.replication.autofollow.fetch_poll_interval';
const WAIT_FOR_RESTORE_MAX_MS = 10 * 60_000;

function asObject(body: unknown, what: string): Json {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest(`${what} must be a JSON object`);
  return body as Json;
}

function onlyFields(body: Json, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw badRequest(
      `unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
      'parsing_exception',
    );
}

function requiredString(body: Json, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v === '')
    throw badRequest(`${field} is required (a non-empty string)`, 'action_request_validation_exception');
  return v;
}

function optionalString(body: Json, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(`${field} must be a string`);
  return v;
}

function parseUseRoles(value: unknown): UseRoles | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest('use_roles must be an object');
  const v = value as Json;
  onlyFields(v, ['leader_cluster_role', 'follower_cluster_role']);
  const leader = v['leader_cluster_role'];
  const follower = v['follower_cluster_role'];
  if (typeof leader !== 'string' || leader === '' || typeof follower !== 'string' || follower === '')
    throw badRequest(
      'use_roles needs both leader_cluster_role and follower_cluster_role',
      'action_request_validation_exception',
    );
  // System roles (`_admin`, `_reader` …) are every database's default grants, not replication roles.
  for (const role of [leader, follower]) {
    if (role.startsWith('_'))
      throw badRequest(`use_roles cannot name a system role: ${role}`, 'action_request_validation_exception');
  }
  return { leader_cluster_role: leader, follower_cluster_role: follower };
}

function followerDbName(name: string): string {
  if (name.startsWith('_')) throw badRequest(`a system database cannot be a follower: ${name}`);
  // Its documents would run as replication jobs on this node, written by whoever writes the leader.
  if (name.endsWith('/_replicator')) throw badRequest(`a replicator database cannot be a follower: ${name}`);
  return validateDatabaseName(name);
}

function boardState(s: FollowerSnapshot): ReplicationState {
  switch (s.status) {
    case 'BOOTSTRAPPING':
    case 'SYNCING':
      return s.retrying ? 'crashing' : 'running';
    case 'PAUSED':
      return 'paused';
    case 'FAILED':
      return 'failed';
    case 'STOPPED':
      return 'stopped';
  }
}

export class FollowerService {
  readonly #storage: Storage;
  readonly #docs: DocumentService;
  readonly #remotes: RemoteRegistry;
  readonly #options: FollowerServiceOptions;
  readonly #log: Logger;
  readonly #followerDb: Database<FollowerRecord, string>;
  readonly #ruleDb: Database<AutoFollowRuleRecord, string>;
  readonly #followers = new Map<string, Follower>();
  readonly #rules = new Map<string, AutoFollowRunner>();
  readonly #clients = new Map<string, { updatedAt: string; url: string; client: LeaderClient }>();
  /** One operation at a time per follower name (start, pause, resume, stop, update). */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #host: FollowerHost;
  #stopping = false;
  #held: string | null = null;

  constructor(
    storage: Storage,
    docs: DocumentService,
    remotes: RemoteRegistry,
    board: StatusBoard,
    options: FollowerServiceOptions,
    log: Logger,
  ) {
    this.#storage = storage;
    this.#docs = docs;
    this.#remotes = remotes;
    this.#options = options;
    this.#log = log;
    this.#followerDb = storage.structured<FollowerRecord, string>('followers');
    this.#ruleDb = storage.structured<AutoFollowRuleRecord, string>('autofollow-rules');
    this.#host = {
      docs,
      nodeId: options.nodeId,
      log,
      tuningDefaults: () => this.#options.defaults,
      connection: options.connection,
      leader: (alias) => ({ remote: this.#remote(alias), client: this.#client(alias) }),
      persist: (record) => this.#persist(record),
      leaderDeleted: (follower) => this.#leaderDeleted(follower),
      held: () => this.#held,
    };
    board.register(() => Promise.resolve(this.#boardRows()));
  }

  // ---- life cycle ----------------------------------------------------------

  /** Brings back every follower and rule (after a restart or a crash, from their checkpoints). */
  start(): void {
    for (const { value } of this.#followerDb.getRange()) {
      const follower = new Follower(this.#host, value);
      this.#followers.set(value.follower, follower);
      follower.start();
    }
    for (const { value } of this.#ruleDb.getRange()) this.#startRule(value);
  }

  /**
   * While this node is a read-only replica (`reason`), no follower or auto-follow rule
   * runs: the follower databases here are its primary's copies, kept up to date by the
   * node link (their followers run on the primary). They show as PAUSED with `reason`;
   * nothing is persisted, and `null` (a promotion) starts them again.
   */
  hold(reason: string | null): void {
    const wasHeld = this.#held !== null;
    this.#held = reason;
    // Called on every link to a primary (a Redis one releases): only a change acts.
    if (wasHeld === (reason !== null)) return;
    if (reason !== null) {
      for (const follower of this.#followers.values()) follower.abandon();
      for (const runner of this.#rules.values()) void runner.stop();
      return;
    }
    for (const follower of this.#followers.values()) {
      // An abandoned run may still be winding down: start once it has.
      void follower.halt(0).then(() => follower.start());
    }
    // The rules start again where their counters were (autofollow_stats survive the hold).
    for (const runner of [...this.#rules.values()]) this.#startRule(runner.rule, runner.counters);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#rules.values()].map((r) => r.stop()));
    await Promise.all([...this.#followers.values()].map((f) => f.halt(2_000)));
    await Promise.all([...this.#clients.values()].map((c) => c.client.close()));
  }

  // ---- helpers ---------------------------------------------------------------

  #remote(alias: string): Remote {
    const remote = this.#remotes.get(alias);
    if (remote === undefined)
      throw new DoppelError(
        ErrorKind.NotFound,
        `no remote named "${alias}" (PUT /_doppel/remotes/${alias})`,
        {
          errorName: 'no_such_remote_cluster_exception',
        },
      );
    if (remote.kind !== 'doppel' && remote.kind !== 'couchdb')
      throw badRequest(`remote "${alias}" is a ${remote.kind} remote; a leader must be doppel or couchdb`);
    return remote;
  }

  #client(alias: string): LeaderClient {
    const remote = this.#remote(alias);
    const cached = this.#clients.get(alias);
    if (cached !== undefined && cached.updatedAt === remote.updated_at && cached.url === remote.url)
      return cached.client;
    if (cached !== undefined) void cached.client.close().catch(() => undefined);
    const client = new LeaderClient(remote);
    this.#clients.set(alias, { updatedAt: remote.updated_at, url: remote.url, client });
    return client;
  }

  async #persist(record: FollowerRecord): Promise<void> {
    // A follower removed meanwhile (deleted with its leader) must not come back.
    if (!this.#followers.has(record.follower)) return;
    await this.#storage.write(() => this.#followerDb.putSync(record.follower, record));
  }

  async #exclusive<T>(name: string, action: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve();
    const next = previous.then(action, action);
    const settled = next.catch(() => undefined);
    this.#locks.set(name, settled);
    try {
      return await next;
    } finally {
      if (this.#locks.get(name) === settled) this.#locks.delete(name);
    }
  }

  /**
   * Without use_roles: admins only; with them: admins, or holders of the follower role when
   * an admin made it one (`follower_roles`): any other role grants nothing here.
   */
  #authorize(ctx: UserContext, useRoles: UseRoles | undefined): void {
    if (isServerAdmin(ctx)) return;
    if (useRoles === undefined)
      throw forbidden('replication actions need a server admin (or use_roles with a follower role you hold)');
    const role = useRoles.follower_cluster_role;
    if (!this.#options.followerRoles.includes(role))
      throw forbidden(
        `"${role}" is not a follower role on this node (an admin lists them in follower_roles)`,
      );
    if (!ctx.roles.includes(role))
      throw forbidden(`you need the follower role "${role}" for this replication`);
  }

  #existing(ctx: UserContext, name: string): Follower {
    const follower = this.#followers.get(name);
    if (follower === undefined) {
      if (!isServerAdmin(ctx)) throw forbidden('replication actions need a server admin');
      throw new DoppelError(ErrorKind.NotFound, `No replication in progress for index:${name}`, {
        errorName: 'resource_not_found_exception',
      });
    }
    this.#authorize(ctx, follower.record.useRoles);
    return follower;
  }

  // ---- lifecycle API -------------------------------------------------------

  /** `PUT _plugins/_replication/{follower}/_start`. */
  async startReplication(
    ctx: UserContext,
    name: string,
    body: unknown,
    options: { waitForRestore?: boolean } = {},
  ): Promise<void> {
    const b = asObject(body, 'the request body');
    onlyFields(b, ['leader_alias', 'leader_index', 'use_roles', 'settings']);
    const leaderAlias = requiredString(b, 'leader_alias');
    const leaderIndex = requiredString(b, 'leader_index');
    const useRoles = parseUseRoles(b['use_roles']);
    this.#authorize(ctx, useRoles);
    const overrides = parseTuningOverrides(b['settings']);
    await this.#startFollower(name, {
      leaderAlias,
      leaderIndex,
      overrides,
      ...(useRoles === undefined ? {} : { useRoles }),
    });
    if (options.waitForRestore === true) await this.#waitForBootstrap(name);
  }

  async #startFollower(
    name: string,
    spec: {
      leaderAlias: string;
      leaderIndex: string;
      overrides: TuningOverrides;
      useRoles?: UseRoles;
      rule?: string;
    },
  ): Promise<void> {
    followerDbName(name);
    validateDatabaseName(spec.leaderIndex);
    await this.#exclusive(name, async () => {
      if (this.#stopping) throw new DoppelError(ErrorKind.Unavailable, 'the node is shutting down');
      const existing = this.#followers.get(name);
      if (existing !== undefined && existing.record.state !== 'stopped')
        throw new DoppelError(
          ErrorKind.DatabaseExists,
          `Cant use same index again for replication. ${name} already follows ${existing.record.leaderIndex} on ${existing.record.leaderAlias}`,
          { errorName: 'resource_already_exists_exception' },
        );
      if (this.#docs.store.exists(name))
        throw new DoppelError(ErrorKind.DatabaseExists, `index [${name}] already exists`, {
          errorName: 'resource_already_exists_exception',
        });
      const client = this.#client(spec.leaderAlias);
      const info = await client.dbInfo(spec.leaderIndex);
      if (info === null)
        throw new DoppelError(
          ErrorKind.NotFound,
          `no such index [${spec.leaderIndex}] on remote "${spec.leaderAlias}"`,
          { errorName: 'index_not_found_exception' },
        );
      if (spec.useRoles !== undefined)
        await checkLeaderRole(client, spec.leaderIndex, spec.useRoles.leader_cluster_role);
      const now = new Date().toISOString();
      const record: FollowerRecord = {
        follower: name,
        leaderAlias: spec.leaderAlias,
        leaderIndex: spec.leaderIndex,
        ...(spec.useRoles === undefined ? {} : { useRoles: spec.useRoles }),
        overrides: spec.overrides,
        ...(spec.rule === undefined ? {} : { rule: spec.rule }),
        state: 'running',
        reason: null,
        historyLost: false,
        bootstrapped: false,
        bootstrap: null,
        followerCheckpoint: 0,
        createdAt: now,
        updatedAt: now,
      };
      await this.#docs.createDatabase(INTERNAL, name);
      await this.#docs.store.setReadOnly(name, readOnlyReason(record));
      const follower = new Follower(this.#host, record);
      this.#followers.set(name, follower);
      await this.#storage.write(() => this.#followerDb.putSync(name, record));
      follower.start();
      this.#log.info(
        { follower: name, leader_alias: spec.leaderAlias, leader_index: spec.leaderIndex },
        'follower started',
      );
    });
  }

  async #waitForBootstrap(name: string): Promise<void> {
    const deadline = Date.now() + WAIT_FOR_RESTORE_MAX_MS;
    while (Date.now() < deadline) {
      const follower = this.#followers.get(name);
      if (follower === undefined) return;
      const s = follower.snapshot();
      if (s.status !== 'BOOTSTRAPPING') return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** `POST …/_pause`: the run ends after a checkpoint; `_resume` continues from it. */
  async pause(ctx: UserContext, name: string, body: unknown): Promise<void> {
    const b = asObject(body, 'the request body');
    onlyFields(b, ['reason']);
    const reason = optionalString(b, 'reason') ?? 'User initiated';
    const follower = this.#existing(ctx, name);
    await this.#exclusive(name, async () => {
      const state = follower.record.state;
      if (state === 'paused')
        throw badRequest(`Replication on Index ${name} is already paused`, 'illegal_argument_exception');
      if (state !== 'running')
        throw badRequest(
          `Replication on Index ${name} is ${state}, not running`,
          'illegal_argument_exception',
        );
      await follower.update({ state: 'paused', reason });
      await follower.halt();
    });
  }

  /** `POST …/_resume`; with `force_resume` the follower is emptied and bootstrapped again. */
  async resume(ctx: UserContext, name: string, body: unknown): Promise<void> {
    const b = asObject(body, 'the request body');
    onlyFields(b, ['force_resume']);
    const force = b['force_resume'] === true || b['force_resume'] === 'true';
    const follower = this.#existing(ctx, name);
    await this.#exclusive(name, async () => {
      const r = follower.record;
      if (r.state === 'stopped')
        throw badRequest(
          `Replication on Index ${name} was stopped; start it again`,
          'illegal_argument_exception',
        );
      if (r.state === 'running' && !force)
        throw badRequest(`Replication on Index ${name} is already running`, 'illegal_argument_exception');
      if (force) {
        await this.#rebootstrap(follower);
        return;
      }
      if (r.historyLost)
        throw badRequest(
          `${r.reason ?? "The leader lost this follower's history."}`,
          'illegal_state_exception',
        );
      const problem = await follower.verifyLeaderHistory();
      if (problem !== null)
        throw badRequest(`${problem} Use force_resume=true to bootstrap again.`, 'illegal_state_exception');
      follower.clearError();
      await follower.update({ state: 'running', reason: null });
      follower.start();
    });
  }

  /** Empties the follower and copies the leader again (the leader must exist). */
  async #rebootstrap(follower: Follower): Promise<void> {
    const r = follower.record;
    const info = await this.#client(r.leaderAlias).dbInfo(r.leaderIndex);
    if (info === null)
      throw new DoppelError(
        ErrorKind.NotFound,
        `no such index [${r.leaderIndex}] on remote "${r.leaderAlias}"`,
        {
          errorName: 'index_not_found_exception',
        },
      );
    await follower.halt();
    const store = this.#docs.store;
    if (store.exists(r.follower)) {
      await store.setReadOnly(r.follower, undefined);
      await store.delete(r.follower);
    }
    await this.#docs.createDatabase(INTERNAL, r.follower);
    await store.setReadOnly(r.follower, readOnlyReason(r));
    follower.resetForBootstrap();
    await follower.update({
      state: 'running',
      reason: null,
      historyLost: false,
      bootstrapped: false,
      bootstrap: null,
      followerCheckpoint: 0,
    });
    follower.start();
    this.#log.info({ follower: r.follower }, 'follower bootstrapping again (force_resume)');
  }

  /**
   * `POST …/_stop`: the follower becomes a normal, writable database with its
   * data. Never waits for the leader; stopping a stopped follower succeeds.
   */
  async stopReplication(ctx: UserContext, name: string): Promise<void> {
    if (!this.#followers.has(name) && this.#isOrphanedFollower(name)) {
      if (!isServerAdmin(ctx)) throw forbidden('replication actions need a server admin');
      await this.#exclusive(name, () => this.#docs.store.setReadOnly(name, undefined));
      this.#log.info({ follower: name }, 'follower database without a follower here made writable');
      return;
    }
    const follower = this.#existing(ctx, name);
    await this.#exclusive(name, async () => {
      if (follower.record.state === 'stopped') return;
      follower.abandon();
      if (this.#docs.store.exists(name)) await this.#docs.store.setReadOnly(name, undefined);
      await follower.update({ state: 'stopped', reason: 'User initiated stop', historyLost: false });
      this.#log.info({ follower: name }, 'follower stopped; the database is writable');
    });
  }

  /**
   * A follower database whose follower record is not on this node: a node replica copies
   * databases (read-only marks included) but not followers, which are node-local. Once
   * promoted, `_stop` is how the copy becomes writable, as its read-only reason says.
   */
  #isOrphanedFollower(name: string): boolean {
    return this.#docs.store.exists(name) && isFollowerReadOnly(name, this.#docs.store.record(name).readOnly);
  }

  /** `PUT …/_update`: the follower's own settings overrides; they apply to the running follower at once. */
  async updateSettings(ctx: UserContext, name: string, body: unknown): Promise<void> {
    const b = asObject(body, 'the request body');
    onlyFields(b, ['settings']);
    if (b['settings'] === undefined)
      throw badRequest('settings is required', 'action_request_validation_exception');
    const overrides = parseTuningOverrides(b['settings']);
    const follower = this.#existing(ctx, name);
    await this.#exclusive(name, async () => {
      await follower.update({ overrides: { ...follower.record.overrides, ...overrides } });
      follower.restart();
    });
  }

  /** The leader database is gone: pause (default) or, with `replicate.delete_index`, stop and delete. */
  async #leaderDeleted(follower: Follower): Promise<void> {
    const r = follower.record;
    if (follower.tuning.deleteWithLeader) {
      // Out of the views first: _status must not report a follower whose database is going.
      // The record goes last, so a crash before then repeats all of this at the next start.
      this.#followers.delete(r.follower);
      const store = this.#docs.store;
      if (store.exists(r.follower)) {
        await store.setReadOnly(r.follower, undefined);
        await store.delete(r.follower);
      }
      await this.#storage.write(() => this.#followerDb.removeSync(r.follower));
      this.#log.info(
        { follower: r.follower },
        'leader deleted: follower stopped and deleted (replicate.delete_index)',
      );
      return;
    }
    await follower.update({
      state: 'paused',
      reason: `AutoPaused: the leader database "${r.leaderIndex}" was deleted on remote "${r.leaderAlias}"`,
    });
    this.#log.warn({ follower: r.follower }, 'leader deleted: follower paused');
  }

  // ---- views ---------------------------------------------------------------

  /** `GET …/_status`. */
  status(ctx: UserContext, name: string, verbose: boolean): Json {
    const follower = this.#followers.get(name);
    if (follower === undefined) {
      if (!isServerAdmin(ctx)) throw forbidden('replication actions need a server admin');
      return { status: 'REPLICATION NOT IN PROGRESS' };
    }
    this.#authorize(ctx, follower.record.useRoles);
    return renderStatus(follower.snapshot(), verbose);
  }

  /** `GET _plugins/_replication/follower_stats`. */
  followerStats(ctx: UserContext): Json {
    if (!isServerAdmin(ctx)) throw forbidden('replication stats need a server admin');
    const snapshots = [...this.#followers.values()]
      .map((f) => f.snapshot())
      .filter((s) => s.status !== 'STOPPED')
      .sort((a, b) => a.record.follower.localeCompare(b.record.follower));
    const count = (status: string): number => snapshots.filter((s) => s.status === status).length;
    const totals = {
      operations_written: 0,
      operations_read: 0,
      failed_read_requests: 0,
      throttled_read_requests: 0,
      failed_write_requests: 0,
      throttled_write_requests: 0,
      follower_checkpoint: 0,
      leader_checkpoint: 0,
      total_write_time_millis: 0,
    };
    const index_stats: Record<string, typeof totals> = {};
    for (const s of snapshots) {
      const one = {
        operations_written: s.operationsWritten,
        operations_read: s.operationsRead,
        failed_read_requests: s.failedReadRequests,
        throttled_read_requests: 0,
        failed_write_requests: s.failedWriteRequests,
        throttled_write_requests: 0,
        follower_checkpoint: s.followerCheckpoint,
        leader_checkpoint: s.leaderCheckpoint,
        total_write_time_millis: s.totalWriteTimeMs,
      };
      index_stats[s.record.follower] = one;
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += one[k];
    }
    const active = snapshots.filter((s) => s.status === 'SYNCING' || s.status === 'BOOTSTRAPPING').length;
    return {
      num_syncing_indices: count('SYNCING'),
      num_bootstrapping_indices: count('BOOTSTRAPPING'),
      num_paused_indices: count('PAUSED'),
      num_failed_indices: count('FAILED'),
      num_shard_tasks: active,
      num_index_tasks: active,
      ...totals,
      index_stats,
    };
  }

  // ---- auto-follow ---------------------------------------------------------

  #ruleKey(alias: string, name: string): string {
    return `${alias}\u0000${name}`;
  }

  #startRule(rule: AutoFollowRuleRecord, counters?: AutoFollowCounters): void {
    const runner = new AutoFollowRunner(
      {
        log: this.#log,
        leaderClient: (alias) => this.#client(alias),
        hasFollower: (name) => this.#followers.has(name),
        startForRule: (r, leaderIndex, follower) =>
          this.#startFollower(follower, {
            leaderAlias: r.leaderAlias,
            leaderIndex,
            overrides: r.overrides,
            ...(r.useRoles === undefined ? {} : { useRoles: r.useRoles }),
            rule: r.name,
          }),
      },
      rule,
      counters,
    );
    this.#rules.set(this.#ruleKey(rule.leaderAlias, rule.name), runner);
    if (this.#held === null) runner.start();
  }

  /** `POST _plugins/_replication/_autofollow`: creates or replaces a rule. */
  async putRule(ctx: UserContext, body: unknown): Promise<void> {
    const b = asObject(body, 'the request body');
    onlyFields(b, ['leader_alias', 'name', 'pattern', 'use_roles', 'settings', 'follower_index_pattern']);
    const leaderAlias = requiredString(b, 'leader_alias');
    const name = requiredString(b, 'name');
    const pattern = requiredString(b, 'pattern');
    const useRoles = parseUseRoles(b['use_roles']);
    this.#authorize(ctx, useRoles);
    const followerIndexPattern = optionalString(b, 'follower_index_pattern') ?? LEADER_INDEX_PLACEHOLDER;
    if (!followerIndexPattern.includes(LEADER_INDEX_PLACEHOLDER))
      throw badRequest(`follower_index_pattern must contain ${LEADER_INDEX_PLACEHOLDER}`);
    compilePattern(pattern);
    followerDbName(followerName(followerIndexPattern, 'x'));
    const settings = { ...asObject(b['settings'], 'settings') };
    let pollIntervalMs = this.#options.autofollowPollMs;
    if (settings[AUTOFOLLOW_POLL_SETTING] !== undefined) {
      pollIntervalMs = parseDurationMs(settings[AUTOFOLLOW_POLL_SETTING], AUTOFOLLOW_POLL_SETTING);
      if (pollIntervalMs < 100) throw badRequest(`${AUTOFOLLOW_POLL_SETTING} must be at least 100ms`);
      delete settings[AUTOFOLLOW_POLL_SETTING];
    }
    const overrides = parseTuningOverrides(settings);
    this.#remote(leaderAlias);
    const key = this.#ruleKey(leaderAlias, name);
    const now = new Date().toISOString();
    const rule: AutoFollowRuleRecord = {
      leaderAlias,
      name,
      pattern,
      followerIndexPattern,
      ...(useRoles === undefined ? {} : { useRoles }),
      overrides,
      pollIntervalMs,
      createdAt: this.#ruleDb.get(key)?.createdAt ?? now,
      updatedAt: now,
    };
    await this.#storage.write(() => this.#ruleDb.putSync(key, rule));
    await this.#rules.get(key)?.stop();
    this.#startRule(rule);
  }

  /** `DELETE _plugins/_replication/_autofollow`: the rule goes; its followers keep replicating. */
  async deleteRule(ctx: UserContext, body: unknown): Promise<void> {
    const b = asObject(body, 'the request body');
    if (b['pattern'] !== undefined)
      throw badRequest('a rule is deleted by leader_alias and name; pattern is not accepted');
    onlyFields(b, ['leader_alias', 'name']);
    const leaderAlias = requiredString(b, 'leader_alias');
    const name = requiredString(b, 'name');
    const key = this.#ruleKey(leaderAlias, name);
    const rule = this.#ruleDb.get(key);
    if (rule === undefined)
      throw new DoppelError(
        ErrorKind.NotFound,
        `no auto-follow rule "${name}" for leader alias "${leaderAlias}"`,
        {
          errorName: 'resource_not_found_exception',
        },
      );
    this.#authorize(ctx, rule.useRoles);
    await this.#rules.get(key)?.stop();
    this.#rules.delete(key);
    await this.#storage.write(() => this.#ruleDb.removeSync(key));
  }

  /** `GET _plugins/_replication/_autofollow`: the rules (OpenSearch has no such listing). */
  listRules(ctx: UserContext): Json {
    if (!isServerAdmin(ctx)) throw forbidden('listing auto-follow rules needs a server admin');
    const rules = [...this.#ruleDb.getRange()].map(({ value: r }) => ({
      leader_alias: r.leaderAlias,
      name: r.name,
      pattern: r.pattern,
      follower_index_pattern: r.followerIndexPattern,
      ...(r.useRoles === undefined ? {} : { use_roles: r.useRoles }),
      settings: {
        ...describeOverrides(r.overrides),
        [AUTOFOLLOW_POLL_SETTING]: `${r.pollIntervalMs}ms`,
      },
      created_at: r.createdAt,
      updated_at: r.updatedAt,
      followers: [...this.#followers.values()]
        .filter((f) => f.record.rule === r.name && f.record.leaderAlias === r.leaderAlias)
        .map((f) => f.name)
        .sort(),
    }));
    return { autofollow_rules: rules };
  }

  /** `GET _plugins/_replication/autofollow_stats`. */
  autofollowStats(ctx: UserContext): Json {
    if (!isServerAdmin(ctx)) throw forbidden('replication stats need a server admin');
    const perRule = [...this.#rules.values()].map((r) => ({
      name: r.rule.name,
      pattern: r.rule.pattern,
      ...copyCounters(r.counters),
    }));
    return {
      num_success_start_replication: perRule.reduce((n, r) => n + r.num_success_start_replication, 0),
      num_failed_start_replication: perRule.reduce((n, r) => n + r.num_failed_start_replication, 0),
      num_failed_leader_calls: perRule.reduce((n, r) => n + r.num_failed_leader_calls, 0),
      failed_indices: [...new Set(perRule.flatMap((r) => r.failed_indices))].sort(),
      autofollow_stats: perRule,
    };
  }

  // ---- bulk ----------------------------------------------------------------

  /**
   * `_bulk_start`: follows every leader database matching `pattern` (minus
   * `filters.exclude_index`); the others act on local followers matching it.
   * Done before answering; the per-index outcome is in the reply.
   */
  async bulk(ctx: UserContext, action: 'start' | 'stop' | 'pause' | 'resume', body: unknown): Promise<Json> {
    const b = asObject(body, 'the request body');
    onlyFields(b, [
      'pattern',
      'leader_alias',
      'use_roles',
      'filters',
      'settings',
      'follower_index_pattern',
      'reason',
      'force_resume',
    ]);
    const pattern = requiredString(b, 'pattern');
    const matches = compilePattern(pattern);
    const filters = asObject(b['filters'], 'filters');
    const excluded = new Set(
      Array.isArray(filters['exclude_index'])
        ? (filters['exclude_index'] as unknown[]).filter((x) => typeof x === 'string')
        : [],
    );
    const succeeded: string[] = [];
    const failed: { index: string; reason: string }[] = [];
    const attempt = async (index: string, action: () => Promise<void>): Promise<void> => {
      try {
        await action();
        succeeded.push(index);
      } catch (err) {
        failed.push({ index, reason: err instanceof DoppelError ? err.reason : String(err) });
      }
    };
    if (action === 'start') {
      const leaderAlias = requiredString(b, 'leader_alias');
      const useRoles = parseUseRoles(b['use_roles']);
      this.#authorize(ctx, useRoles);
      const overrides = parseTuningOverrides(b['settings']);
      const followerIndexPattern = optionalString(b, 'follower_index_pattern') ?? LEADER_INDEX_PLACEHOLDER;
      const leaderDbs = await this.#client(leaderAlias).allDbs();
      for (const leaderIndex of leaderDbs.filter((n) => matches(n) && !excluded.has(n))) {
        const name = followerName(followerIndexPattern, leaderIndex);
        if (this.#followers.get(name)?.record.state === 'running') continue;
        await attempt(name, () =>
          this.#startFollower(name, {
            leaderAlias,
            leaderIndex,
            overrides,
            ...(useRoles === undefined ? {} : { useRoles }),
          }),
        );
      }
    } else {
      const names = [...this.#followers.keys()].filter((n) => matches(n) && !excluded.has(n)).sort();
      for (const name of names) {
        const state = this.#followers.get(name)?.record.state;
        if (action === 'stop' && state === 'stopped') continue;
        if (action === 'pause' && state !== 'running') continue;
        if (action === 'resume' && state !== 'paused' && state !== 'failed') continue;
        await attempt(name, () =>
          action === 'stop'
            ? this.stopReplication(ctx, name)
            : action === 'pause'
              ? this.pause(ctx, name, b['reason'] === undefined ? {} : { reason: b['reason'] })
              : this.resume(
                  ctx,
                  name,
                  b['force_resume'] === undefined ? {} : { force_resume: b['force_resume'] },
                ),
        );
      }
    }
    return { acknowledged: failed.length === 0, indices: succeeded, failed_indices: failed };
  }

  // ---- the status board ----------------------------------------------------

  #boardRows(): ReplicationStatus[] {
    const rows: ReplicationStatus[] = [];
    for (const follower of this.#followers.values()) {
      const s = follower.snapshot();
      const r = s.record;
      const remote = this.#remotes.get(r.leaderAlias);
      rows.push({
        kind: 'follower',
        id: r.follower,
        state: boardState(s),
        source: `${remote?.url ?? r.leaderAlias}/${r.leaderIndex}`,
        target: r.follower,
        last_error:
          s.status === 'SYNCING' || s.status === 'BOOTSTRAPPING'
            ? s.lastError
            : s.status === 'STOPPED'
              ? null
              : s.reason,
        counters: {
          operations_read: s.operationsRead,
          operations_written: s.operationsWritten,
          failed_read_requests: s.failedReadRequests,
          failed_write_requests: s.failedWriteRequests,
          leader_checkpoint: s.leaderCheckpoint,
          follower_checkpoint: s.followerCheckpoint,
        },
        lag: {
          records: Math.max(0, s.leaderCheckpoint - s.followerCheckpoint),
          seconds: s.behindSince === null ? 0 : (Date.now() - s.behindSince) / 1000,
        },
        updated_at: new Date(s.updatedAt).toISOString(),
        details: {
          status: s.status,
          reason: s.reason,
          leader_alias: r.leaderAlias,
          leader_index: r.leaderIndex,
          ...(r.rule === undefined ? {} : { autofollow_rule: r.rule }),
        },
      });
    }
    for (const runner of this.#rules.values()) {
      const rule = runner.rule;
      const remote = this.#remotes.get(rule.leaderAlias);
      rows.push({
        kind: 'autofollow',
        id: `${rule.leaderAlias}/${rule.name}`,
        state: runner.lastError === null ? 'running' : 'crashing',
        source: `${remote?.url ?? rule.leaderAlias}/${rule.pattern}`,
        target: rule.followerIndexPattern,
        last_error: runner.lastError,
        counters: {
          num_success_start_replication: runner.counters.num_success_start_replication,
          num_failed_start_replication: runner.counters.num_failed_start_replication,
          num_failed_leader_calls: runner.counters.num_failed_leader_calls,
        },
        lag: { records: null, seconds: null },
        updated_at: new Date(runner.counters.last_execution_time || Date.parse(rule.updatedAt)).toISOString(),
        details: { pattern: rule.pattern, failed_indices: [...runner.counters.failed_indices] },
      });
    }
    return rows;
  }
}

function copyCounters(c: AutoFollowCounters): AutoFollowCounters {
  return { ...c, failed_indices: [...c.failed_indices] };
}

/** `_status` in OpenSearch's shape, from one snapshot. */
export function renderStatus(s: FollowerSnapshot, verbose: boolean): Json {
  const r = s.record;
  const out: Json = {
    status: s.status,
    reason: s.reason,
    leader_alias: r.leaderAlias,
    leader_index: r.leaderIndex,
    follower_index: r.follower,
  };
  const syncing = {
    leader_checkpoint: s.leaderCheckpoint,
    follower_checkpoint: s.followerCheckpoint,
    seq_no: s.followerSeq,
  };
  let bootstrap: Json | undefined;
  if (s.status === 'BOOTSTRAPPING' && r.bootstrap !== null) {
    const b = r.bootstrap;
    const pct = (part: number, whole: number): number =>
      whole <= 0 ? 100 : Math.min(100, Math.round((part / whole) * 1000) / 10);
    bootstrap = {
      bytes_total: b.bytesTotal,
      bytes_recovered: Math.min(s.followerBytes, b.bytesTotal),
      bytes_percent: pct(s.followerBytes, b.bytesTotal),
      files_total: b.docsTotal,
      files_recovered: Math.min(s.followerDocs, b.docsTotal),
      files_percent: pct(s.followerDocs, b.docsTotal),
      start_time: b.startTime,
      running_time: Date.now() - b.startTime,
    };
    out['bootstrap_details'] = bootstrap;
  } else if (s.status === 'SYNCING') out['syncing_details'] = syncing;
  if (verbose) {
    out['shard_replication_details'] = [
      {
        shard_id: `[${r.follower}][0]`,
        ...(bootstrap === undefined
          ? { syncing_task_details: syncing }
          : { bootstrap_task_details: bootstrap }),
      },
    ];
    out['doppel'] = {
      last_error: s.lastError,
      operations_read: s.operationsRead,
      operations_written: s.operationsWritten,
      settings: describeOverrides(r.overrides),
      ...(r.rule === undefined ? {} : { autofollow_rule: r.rule }),
      created_at: r.createdAt,
      updated_at: r.updatedAt,
    };
  }
  return out;
}
