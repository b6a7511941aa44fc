/**
 * The write rule of `_replicator` databases (CouchDB's `_design/_replicator`
 * validation): a non-admin may only create replications that run as
 * themselves — `user_ctx.name` is their name and `user_ctx.roles` a subset of
 * their roles — and may change or delete only their own. Admins may delegate to anyone.
 */
import { forbidden } from '../../errors.js';
import { isServerAdmin, type UserContext } from '../auth/user-context.js';
import type { DocumentRule } from '../docs/document-service.js';
import { isReplicatorDb } from './replicator-docs.js';

export const replicatorDocRule: DocumentRule = {
  appliesTo: isReplicatorDb,
  validate(
    ctx: UserContext,
    doc: Readonly<Record<string, unknown>>,
    existing: Readonly<Record<string, unknown>> | null,
  ): void {
    if (isServerAdmin(ctx)) return;
    if (existing !== null && ownerOf(existing) !== ctx.name)
      throw forbidden(
        'only its owner (user_ctx.name) or an admin may change or delete a replication document',
      );
    if (doc['_deleted'] === true) return;
    const userCtx = doc['user_ctx'];
    const name = ownerOf(doc);
    if (name !== ctx.name)
      throw forbidden(
        `non-admins may only run replications as themselves: set user_ctx.name to ${JSON.stringify(ctx.name)}`,
      );
    const roles = (userCtx as { roles?: unknown }).roles ?? [];
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string' && ctx.roles.includes(r)))
      throw forbidden('user_ctx.roles may only list roles you have');
  },
};

/** The user a replication document runs as (its `user_ctx.name`). */
function ownerOf(doc: Readonly<Record<string, unknown>>): unknown {
  const userCtx = doc['user_ctx'];
  return typeof userCtx === 'object' && userCtx !== null ? (userCtx as { name?: unknown }).name : undefined;
}
