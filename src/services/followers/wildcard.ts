/**
 * OpenSearch index patterns: `*` matches any run of characters, `?` one;
 * several patterns may be joined with commas. Names beginning with `_`
 * (system databases) never match.
 */
export function compilePattern(pattern: string): (name: string) => boolean {
  const parts = pattern
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const regexes = parts.map(
    (p) =>
      new RegExp(
        `^${p
          .split('')
          .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
          .join('')}$`,
      ),
  );
  return (name) => !name.startsWith('_') && regexes.some((r) => r.test(name));
}

export const LEADER_INDEX_PLACEHOLDER = '{{leader_index}}';

/** The follower name a rule gives a leader database. */
export function followerName(followerIndexPattern: string, leaderIndex: string): string {
  return followerIndexPattern.split(LEADER_INDEX_PLACEHOLDER).join(leaderIndex);
}
