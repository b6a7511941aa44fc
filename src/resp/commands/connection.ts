/** Connection commands: AUTH, HELLO, PING, ECHO, QUIT, SELECT, CLIENT. */
import { DATABASES } from '../../engines/kv/keyspace.js';
import { parseInt64 } from '../../engines/kv/numbers.js';
import { ADMIN_ROLE } from '../../services/auth/user-context.js';
import { int, text, word } from '../args.js';
import type { Client } from '../client.js';
import { command, Flag, type CommandSpec } from '../command-spec.js';
import { noPermission, respError, syntaxError, wrongArity } from '../errors.js';
import { clientLine } from './server.js';

const WRONGPASS = (): Error => respError('invalid username-password pair or user is disabled.', 'WRONGPASS');

async function login(c: Client, name: string, password: string): Promise<void> {
  const user = await c.server.verify(name, password);
  if (user === null) throw WRONGPASS();
  c.authenticate(user);
}

const REDIS_VERSION = '7.0.15';

function helloReply(c: Client): void {
  const r = c.reply;
  r.map(7);
  r.bulkText('server');
  r.bulkText('redis');
  r.bulkText('version');
  r.bulkText(REDIS_VERSION);
  r.bulkText('proto');
  r.integer(c.protocol);
  r.bulkText('id');
  r.integer(c.id);
  r.bulkText('mode');
  r.bulkText('standalone');
  r.bulkText('role');
  r.bulkText(c.server.isReadOnly() ? 'replica' : 'master');
  r.bulkText('modules');
  r.array(0);
}

function validName(name: Buffer): boolean {
  for (const b of name) if (b < 0x21 || b > 0x7e) return false;
  return true;
}

/** Disconnects `target`: at once, or after this reply when it is the caller itself. */
function disconnect(c: Client, target: Client): void {
  if (target === c) c.closeRequested = true;
  else target.onFatal();
}

/** CLIENT KILL addr (one client, OK or an error) or CLIENT KILL <filter value> … (how many). */
function clientKill(c: Client, argv: Buffer[]): void {
  const clients = [...c.server.clients];
  if (argv.length === 3) {
    const target = clients.find((other) => other.addr === text(argv[2]));
    if (target === undefined) throw respError('No such client');
    disconnect(c, target);
    c.reply.ok();
    return;
  }
  if (argv.length < 3 || argv.length % 2 !== 0) {
    if (argv.length < 3) throw wrongArity('client|kill');
    throw syntaxError();
  }
  const filters: ((other: Client) => boolean)[] = [];
  let skipMe = true;
  for (let i = 2; i < argv.length; i += 2) {
    const value = argv[i + 1];
    switch (word(argv[i])) {
      case 'ID': {
        const id = parseInt64(value);
        if (typeof id !== 'number' || id < 1) throw respError('client-id should be greater than 0');
        filters.push((other) => other.id === id);
        break;
      }
      case 'TYPE': {
        const type = word(value);
        if (type === 'NORMAL') filters.push((other) => !other.subscriptions.listening && !other.nodeReplica);
        else if (type === 'PUBSUB') filters.push((other) => other.subscriptions.listening);
        else if (type === 'REPLICA' || type === 'SLAVE') filters.push((other) => other.nodeReplica);
        // This node's primary link is not one of its clients.
        else if (type === 'MASTER') filters.push(() => false);
        else throw respError(`Unknown client type '${value.toString('latin1')}'`);
        break;
      }
      case 'USER': {
        const name = text(value);
        filters.push((other) => other.user?.name === name);
        break;
      }
      case 'ADDR':
        filters.push((other) => other.addr === text(value));
        break;
      case 'LADDR':
        filters.push((other) => other.laddr === text(value));
        break;
      case 'SKIPME': {
        const answer = word(value);
        if (answer !== 'YES' && answer !== 'NO') throw syntaxError();
        skipMe = answer === 'YES';
        break;
      }
      default:
        throw syntaxError();
    }
  }
  let killed = 0;
  for (const other of clients) {
    if ((skipMe && other === c) || !filters.every((matches) => matches(other))) continue;
    disconnect(c, other);
    killed++;
  }
  c.reply.integer(killed);
}

function clientCommand(c: Client, argv: Buffer[]): void {
  const sub = word(argv[1]);
  const r = c.reply;
  switch (sub) {
    case 'ID':
      r.integer(c.id);
      return;
    case 'SETNAME':
      if (argv.length !== 3) throw respError("wrong number of arguments for 'client|setname' command");
      if (!validName(argv[2]))
        throw respError('Client names cannot contain spaces, newlines or special characters.');
      c.name = argv[2].toString('latin1');
      r.ok();
      return;
    case 'GETNAME':
      r.bulk(c.name === '' ? null : Buffer.from(c.name, 'latin1'));
      return;
    case 'SETINFO': {
      if (argv.length !== 4) throw respError("wrong number of arguments for 'client|setinfo' command");
      const attr = word(argv[2]);
      if (attr === 'LIB-NAME') c.libName = argv[3].toString('latin1');
      else if (attr === 'LIB-VER') c.libVersion = argv[3].toString('latin1');
      else throw respError(`Unrecognized option '${argv[2].toString('latin1')}'`);
      r.ok();
      return;
    }
    case 'LIST': {
      if (c.user?.roles.includes(ADMIN_ROLE) !== true) {
        throw noPermission('client|list');
      }
      const lines = [...c.server.clients].map((other) => clientLine(other) + '\n');
      r.verbatim(lines.join(''));
      return;
    }
    case 'INFO':
      r.verbatim(clientLine(c) + '\n');
      return;
    case 'KILL':
      if (c.user?.roles.includes(ADMIN_ROLE) !== true) throw noPermission('client|kill');
      clientKill(c, argv);
      return;
    case 'UNBLOCK': {
      if (c.user?.roles.includes(ADMIN_ROLE) !== true) throw noPermission('client|unblock');
      if (argv.length < 3 || argv.length > 4) throw wrongArity('client|unblock');
      const id = int(argv[2]);
      const how = argv.length === 4 ? word(argv[3]) : 'TIMEOUT';
      if (how !== 'TIMEOUT' && how !== 'ERROR')
        throw respError('CLIENT UNBLOCK reason should be TIMEOUT or ERROR');
      const target = [...c.server.clients].find((other) => other.id === id);
      const waiting = target === undefined ? undefined : c.server.blocked.of(target);
      if (waiting === undefined) {
        r.integer(0);
        return;
      }
      waiting.abandon((client) => {
        if (how === 'ERROR') client.reply.error('UNBLOCKED client unblocked via CLIENT UNBLOCK');
        else client.reply.nullArray();
      });
      r.integer(1);
      return;
    }
    case 'NO-EVICT':
    case 'NO-TOUCH':
    case 'REPLY':
      r.ok();
      return;
    default:
      throw respError(`unknown subcommand '${argv[1].toString('latin1')}'. Try CLIENT HELP.`);
  }
}

export const connectionCommands: CommandSpec[] = [
  command({
    name: 'auth',
    arity: -2,
    flags: Flag.NoAuth | Flag.Immediate | Flag.Fast | Flag.Loading | Flag.Async,
    group: 'connection',
    summary: 'Authenticates the connection.',
    run: () => undefined,
    runAsync: async (c, argv) => {
      if (argv.length > 3) throw syntaxError();
      const name = argv.length === 3 ? text(argv[1]) : c.server.defaultUser;
      await login(c, name, text(argv[argv.length - 1]));
      c.reply.ok();
    },
  }),
  command({
    name: 'hello',
    arity: -1,
    flags: Flag.NoAuth | Flag.Immediate | Flag.Fast | Flag.Loading | Flag.Async,
    group: 'connection',
    since: '6.0.0',
    summary: 'Handshakes with the server (protocol version, authentication, client name).',
    run: () => undefined,
    runAsync: async (c, argv) => {
      let protocol = c.protocol;
      if (argv.length >= 2) {
        const n = parseInt64(argv[1]);
        if (n === undefined) throw respError('Protocol version is not an integer or out of range');
        if (n !== 2 && n !== 3) throw respError('unsupported protocol version', 'NOPROTO');
        protocol = n;
      }
      let credentials: [string, string] | undefined;
      let name: Buffer | undefined;
      for (let i = 2; i < argv.length; i++) {
        const option = word(argv[i]);
        if (option === 'AUTH' && i + 2 < argv.length) {
          credentials = [text(argv[i + 1]), text(argv[i + 2])];
          i += 2;
        } else if (option === 'SETNAME' && i + 1 < argv.length) {
          name = argv[++i]!;
          if (!validName(name))
            throw respError('Client names cannot contain spaces, newlines or special characters.');
        } else {
          throw respError(`Syntax error in HELLO option '${argv[i].toString('latin1')}'`);
        }
      }
      if (credentials !== undefined) await login(c, credentials[0], credentials[1]);
      if (c.user === null) {
        throw respError(
          'HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
          'NOAUTH',
        );
      }
      if (name !== undefined) c.name = name.toString('latin1');
      c.reply.resp3 = protocol === 3;
      helloReply(c);
    },
  }),
  command({
    name: 'ping',
    arity: -1,
    flags: Flag.NoAuth | Flag.Fast,
    group: 'connection',
    run: (c, argv) => {
      if (argv.length > 2) throw respError("wrong number of arguments for 'ping' command");
      if (c.protocol === 2 && c.subscriptions.listening) {
        // A RESP2 listener's replies must look like its messages: an array.
        c.reply.array(2);
        c.reply.bulkText('pong');
        c.reply.bulk(argv.length === 2 ? argv[1] : Buffer.alloc(0));
      } else if (argv.length === 2) c.reply.bulk(argv[1]);
      else c.reply.simple('PONG');
    },
  }),
  command({
    name: 'echo',
    arity: 2,
    flags: Flag.Fast,
    group: 'connection',
    run: (c, argv) => c.reply.bulk(argv[1]),
  }),
  command({
    name: 'quit',
    arity: -1,
    flags: Flag.NoAuth | Flag.Immediate | Flag.Fast | Flag.Loading,
    group: 'connection',
    run: (c) => {
      c.closeRequested = true;
      c.reply.ok();
    },
  }),
  command({
    name: 'reset',
    arity: 1,
    flags: Flag.NoAuth | Flag.Immediate | Flag.Fast | Flag.Loading,
    group: 'connection',
    since: '6.2.0',
    summary:
      "Resets the connection's state (transaction, watches, subscriptions, database, protocol, login).",
    run: (c) => {
      c.reset();
      c.reply.simple('RESET');
    },
  }),
  command({
    name: 'select',
    arity: 2,
    flags: Flag.Fast | Flag.Loading,
    group: 'connection',
    run: (c, argv) => {
      const db = int(argv[1]);
      if (db < 0 || db >= DATABASES) throw respError('DB index is out of range');
      c.db = db;
      c.reply.ok();
    },
  }),
  command({
    name: 'client',
    arity: -2,
    flags: Flag.Loading,
    group: 'connection',
    since: '2.4.0',
    run: clientCommand,
  }),
];
