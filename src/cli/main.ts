import { setFlagsFromString } from 'node:v8';
import { Command, Option } from 'commander';
import { configTable, type Setting, type SettingName } from '../config/config-table.js';
import { ConfigError, describeSettings, envName, flagName, loadConfig } from '../config/load-config.js';
import { startNode } from '../server/node.js';
import { StorageFormatError } from '../storage/environment.js';

const program = new Command();
program
  .name('doppel')
  .description('Doppel: a database server whose reason to exist is replication.')
  .showHelpAfterError()
  .addHelpText(
    'after',
    `\nEvery setting is also read from DOPPEL_<NAME> (e.g. ${envName('http_port')}) and from the JSON\n` +
      `file given by --config. Precedence: flag, environment, file, default.\n` +
      `Admin credentials: DOPPEL_ADMIN_USER / DOPPEL_ADMIN_PASSWORD (on first start without them,\n` +
      `a password is generated and printed once; only its hash is stored).\n\nSettings of \`doppel serve\`:\n${describeSettings()}\n`,
  );

const serve = program
  .command('serve')
  .description('Start a node (HTTP API; Redis and cluster ports reserved).');
for (const [name, setting] of Object.entries(configTable) as [SettingName, Setting][]) {
  const flag =
    setting.type === 'boolean' ? `${flagName(name)} [bool]` : `${flagName(name)} <${setting.type}>`;
  const option = new Option(
    flag,
    `${setting.description} (env ${envName(name)}, default ${JSON.stringify(setting.default)})`,
  );
  if (setting.values !== undefined) option.choices(setting.values);
  serve.addOption(option);
}
serve.action(async (options: Record<string, unknown>) => {
  // V8 allocates objects of a code site straight into the old generation once most of them
  // outlived one scavenge, which a burst of writes (a load, a pipelined client) easily makes
  // true of a write's own rows. The decision never reverts, and each such short-lived old
  // object then holds the young buffers it points to through every scavenge until a full
  // collection: 3 MB promoted and 5 ms pauses per scavenge instead of 1 ms.
  setFlagsFromString('--no-allocation-site-pretenuring');
  const flags: Partial<Record<SettingName, unknown>> = {};
  for (const name of Object.keys(configTable) as SettingName[]) {
    const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (options[camel] !== undefined) flags[name] = options[camel];
  }
  try {
    const config = loadConfig(flags);
    // SHUTDOWN reaches this only once startNode has returned (see `startNode`).
    const node = await startNode(config, { onShutdownRequested: () => stop() });
    const stop = (): void => {
      node.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StorageFormatError) {
      process.stderr.write(`doppel: ${err.message}\n`);
      process.exit(2);
    }
    const { code, address, port } = err as { code?: unknown; address?: unknown; port?: unknown };
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      const why = code === 'EADDRINUSE' ? 'the address is already in use' : 'permission denied';
      process.stderr.write(
        `doppel: cannot listen on ${String(address)}:${String(port)}: ${why}. ` +
          `Choose other ports with --http-port / --resp-port / --cluster-port (0 picks a free one).\n`,
      );
      process.exit(1);
    }
    throw err;
  }
});

await program.parseAsync(process.argv);
