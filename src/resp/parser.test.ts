import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, ProtocolError, RespParser, type ParsedCommand } from './parser.js';
import { prng as rng } from '../../test/support/prng.js';

function encode(argv: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${argv.length}\r\n`)];
  for (const arg of argv) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Feeds `chunks` one by one, draining commands after each; returns them all. */
function parseChunks(chunks: readonly Buffer[], parser = new RespParser()): ParsedCommand[] {
  const out: ParsedCommand[] = [];
  for (const chunk of chunks) {
    parser.feed(chunk);
    for (let command = parser.next(); command !== undefined; command = parser.next()) out.push(command);
  }
  return out;
}

const text = (command: ParsedCommand): string[] => command.argv.map((a) => a.toString('latin1'));

function splitRandomly(input: Buffer, random: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < input.length) {
    const size = random() < 0.2 ? 1 : 1 + Math.floor(random() * Math.min(200, input.length - at));
    chunks.push(input.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

void describe('RespParser', () => {
  void it('parses a multibulk command and counts its bytes', () => {
    const input = encode(['SET', 'key', 'value']);
    const [command, ...rest] = parseChunks([input]);
    assert.deepEqual(text(command), ['SET', 'key', 'value']);
    assert.equal(command.bytes, input.length);
    assert.equal(rest.length, 0);
  });

  void it('parses a pipeline of many commands in one chunk, byte counts adding up', () => {
    const commands = [['PING'], ['SET', 'a', '1'], ['GET', 'a'], ['DEL', 'a', 'b', 'c']];
    const input = Buffer.concat(commands.map(encode));
    const parsed = parseChunks([input]);
    assert.deepEqual(parsed.map(text), commands);
    assert.equal(
      parsed.reduce((n, c) => n + c.bytes, 0),
      input.length,
    );
  });

  void it('is binary safe', () => {
    const value = Buffer.from([0, 13, 10, 255, 36, 42]);
    const [command] = parseChunks([encode(['SET', Buffer.from([0, 1]), value])]);
    assert.deepEqual(command.argv[2], value);
    assert.deepEqual(command.argv[1], Buffer.from([0, 1]));
  });

  void it('parses inline commands, with quotes and escapes', () => {
    const input = Buffer.from("PING\r\nSET k \"a b\\x41\\n\" 'it\\'s'\nGET k\r\n");
    const parsed = parseChunks([input]);
    assert.deepEqual(parsed.map(text), [['PING'], ['SET', 'k', 'a bA\n', "it's"], ['GET', 'k']]);
    assert.deepEqual(
      parsed.map((c) => c.bytes),
      [6, "SET k \"a b\\x41\\n\" 'it\\'s'\n".length, 7],
    );
  });

  void it('returns empty commands for empty lines, *0 and *-1, counting their bytes', () => {
    const parsed = parseChunks([Buffer.from('\r\n\n*0\r\n*-1\r\nPING\r\n')]);
    assert.deepEqual(
      parsed.map((c) => [c.argv.length, c.bytes]),
      [
        [0, 2],
        [0, 1],
        [0, 4],
        [0, 5],
        [1, 6],
      ],
    );
  });

  void it('assembles a big bulk string across many chunks', () => {
    const big = Buffer.alloc(300_000, 7);
    big[123_456] = 1;
    const input = encode(['SET', 'k', big]);
    const parsed = parseChunks(splitRandomly(input, rng(1)));
    assert.equal(parsed.length, 1);
    assert.deepEqual(parsed[0].argv[2], big);
    assert.equal(parsed[0].bytes, input.length);
  });

  void it('waits for more input on partial frames', () => {
    const parser = new RespParser();
    parser.feed(Buffer.from('*2\r\n$3\r\nGET\r\n$1'));
    assert.equal(parser.next(), undefined);
    parser.feed(Buffer.from('\r\nk\r'));
    assert.equal(parser.next(), undefined);
    parser.feed(Buffer.from('\n'));
    assert.deepEqual(text(parser.next()!), ['GET', 'k']);
  });

  const rejects = (input: string, message: string, parser = new RespParser()): void => {
    parser.feed(Buffer.from(input));
    assert.throws(
      () => {
        while (parser.next() !== undefined);
      },
      (err: unknown) => err instanceof ProtocolError && err.message === message,
    );
    // The parser stays failed.
    assert.throws(() => parser.next(), ProtocolError);
  };

  void it("rejects malformed frames with Redis' messages", () => {
    rejects('*x\r\n', 'Protocol error: invalid multibulk length');
    rejects('*20000000\r\n', 'Protocol error: invalid multibulk length');
    rejects('*1\r\nfoo\r\n', "Protocol error: expected '$', got 'f'");
    rejects('*1\r\n$-1\r\n', 'Protocol error: invalid bulk length');
    rejects('*1\r\n$x\r\n', 'Protocol error: invalid bulk length');
    rejects(`*1\r\n$${DEFAULT_LIMITS.maxBulkBytes + 1}\r\n`, 'Protocol error: invalid bulk length');
    rejects('*1\r\n$1\r\nab\r\n', 'Protocol error: expected CRLF after bulk');
    rejects('SET "a\r\n', 'Protocol error: unbalanced quotes in request');
    rejects('SET "a"b\r\n', 'Protocol error: unbalanced quotes in request');
    rejects('x'.repeat(70_000), 'Protocol error: too big inline request');
    rejects('*1\r\n$' + '1'.repeat(70_000), 'Protocol error: too big bulk count string');
  });

  void it('applies the unauthenticated limits until told otherwise', () => {
    rejects(
      '*11\r\n',
      'Protocol error: unauthenticated multibulk length',
      new RespParser({ authenticated: false }),
    );
    rejects(
      '*1\r\n$16385\r\n',
      'Protocol error: unauthenticated bulk length',
      new RespParser({ authenticated: false }),
    );
    const parser = new RespParser({ authenticated: false });
    parser.authenticated = true;
    parser.feed(encode(Array.from({ length: 11 }, () => 'x')));
    assert.equal(parser.next()!.argv.length, 11);
  });

  void it('fuzz: any split of a valid pipeline parses like the whole', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = rng(seed);
      const commands: Buffer[][] = [];
      const frames: Buffer[] = [];
      const count = 1 + Math.floor(random() * 20);
      for (let i = 0; i < count; i++) {
        if (random() < 0.25) {
          // An inline command of plain tokens.
          const argv = Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
            Buffer.from(`t${Math.floor(random() * 1e6)}`),
          );
          commands.push(argv);
          frames.push(
            Buffer.from(argv.map((a) => a.toString()).join(' ') + (random() < 0.5 ? '\r\n' : '\n')),
          );
          continue;
        }
        const argv = Array.from({ length: 1 + Math.floor(random() * 6) }, () => {
          const size = random() < 0.05 ? 40_000 + Math.floor(random() * 40_000) : Math.floor(random() * 40);
          const bytes = Buffer.alloc(size);
          for (let j = 0; j < Math.min(size, 64); j++) bytes[j] = Math.floor(random() * 256);
          return bytes;
        });
        commands.push(argv);
        frames.push(encode(argv));
      }
      const input = Buffer.concat(frames);
      const whole = parseChunks([input]);
      const pieces = parseChunks(splitRandomly(input, random));
      assert.equal(whole.length, commands.length, `seed ${seed}`);
      assert.deepEqual(
        pieces.map((c) => c.argv),
        commands,
        `seed ${seed}`,
      );
      assert.deepEqual(
        pieces.map((c) => c.bytes),
        frames.map((f) => f.length),
        `seed ${seed}`,
      );
    }
  });

  void it('fuzz: random junk only ever raises protocol errors', () => {
    const alphabet = Buffer.from('*$\r\n0123456789-+ "\'\\xabcdefSETGET');
    for (let seed = 1; seed <= 2000; seed++) {
      const random = rng(seed);
      const length = Math.floor(random() * 300);
      const input = Buffer.alloc(length);
      for (let i = 0; i < length; i++) {
        input[i] =
          random() < 0.8 ? alphabet[Math.floor(random() * alphabet.length)] : Math.floor(random() * 256);
      }
      const parser = new RespParser({ authenticated: random() < 0.5 });
      let consumed = 0;
      try {
        for (const chunk of splitRandomly(input, random)) {
          parser.feed(chunk);
          for (let command = parser.next(); command !== undefined; command = parser.next())
            consumed += command.bytes;
        }
      } catch (err) {
        assert.ok(err instanceof ProtocolError, `seed ${seed}: ${String(err)}`);
      }
      assert.ok(consumed <= input.length, `seed ${seed}`);
    }
  });
});
