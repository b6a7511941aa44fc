import { readFileSync } from 'node:fs';
import { configTable, type Config, type Setting, type SettingName } from './config-table.js';

export const flagName = (name: string): string => `--${name.replaceAll('_', '-')}`;
export const envName = (name: string): string => `DOPPEL_${name.toUpperCase()}`;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function coerce(name: string, setting: Setting, raw: unknown, source: string): string | number | boolean {
  const fail = (why: string): never => {
    throw new ConfigError(`${source}: ${name} ${why} (got ${JSON.stringify(raw)})`);
  };
  switch (setting.type) {
    case 'integer': {
      const n =
        typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) return fail('must be an integer');
      if (setting.min !== undefined && n < setting.min) return fail(`must be at least ${setting.min}`);
      return n;
    }
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return fail('must be true or false');
    case 'enum':
      if (typeof raw === 'string' && setting.values?.includes(raw)) return raw;
      return fail(`must be one of ${setting.values?.join(', ')}`);
    case 'string':
      if (typeof raw === 'string') return raw;
      return fail('must be a string');
  }
}

/**
 * Resolves every setting with the precedence flag > environment > config file > default.
 * `flags` holds values already parsed by the CLI, keyed by setting name.
 */
export function loadConfig(
  flags: Partial<Record<SettingName, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const names = Object.keys(configTable) as SettingName[];
  const configPath = (flags.config ?? env[envName('config')] ?? '') as string;
  let file: Record<string, unknown> = {};
  if (configPath !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${configPath}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${configPath} must hold a JSON object`);
    }
    file = parsed as Record<string, unknown>;
    for (const key of Object.keys(file)) {
      if (!(key in configTable)) throw new ConfigError(`config file ${configPath}: unknown setting ${key}`);
    }
  }
  const out: Record<string, string | number | boolean> = {};
  for (const name of names) {
    const setting: Setting = configTable[name];
    const fromFlag = flags[name];
    const fromEnv = env[envName(name)];
    if (fromFlag !== undefined) out[name] = coerce(name, setting, fromFlag, `flag ${flagName(name)}`);
    else if (fromEnv !== undefined)
      out[name] = coerce(name, setting, fromEnv, `environment ${envName(name)}`);
    else if (name in file) out[name] = coerce(name, setting, file[name], `config file ${configPath}`);
    else out[name] = setting.default;
  }
  return out as unknown as Config;
}

/** The settings section of `--help`: one entry per setting, with its variable and default. */
export function describeSettings(): string {
  const lines: string[] = [];
  for (const [name, setting] of Object.entries(configTable) as [string, Setting][]) {
    const values = setting.values ? ` (${setting.values.join('|')})` : '';
    lines.push(`  ${flagName(name)} <${setting.type}>${values}`);
    lines.push(`      ${setting.description}`);
    lines.push(
      `      env ${envName(name)}, config key "${name}", default ${JSON.stringify(setting.default)}`,
    );
  }
  return lines.join('\n');
}
