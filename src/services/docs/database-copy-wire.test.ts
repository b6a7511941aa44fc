import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CopiedDoc, CopyFrame } from '../../engines/docs/database-copy.js';
import { md5Digest } from '../../engines/docs/doc-input.js';
import { encodeRevision } from '../../engines/docs/doc-records.js';
import { frame } from '../frames.js';
import { CopyFrameKind, CopyReader, CopyWriter } from './database-copy-wire.js';
import { int, prng } from '../../../test/support/prng.js';

const CHUNK_BYTES = 256 * 1024;

/** Every frame `reader` can decode now. */
function drain(reader: CopyReader): CopyFrame[] {
  const out: CopyFrame[] = [];
  for (let f = reader.next(); f !== undefined; f = reader.next()) out.push(f);
  return out;
}

/** Decodes `bytes` fed in the given chunk sizes (the rest in one chunk), reading after every chunk. */
function decodeInChunks(bytes: Buffer, nextSize: () => number): CopyFrame[] {
  const reader = new CopyReader();
  const out: CopyFrame[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = Math.max(1, nextSize());
    // Copies, so no chunk shares memory with the next.
    reader.feed(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
    out.push(...drain(reader));
  }
  assert.equal(reader.buffered, 0, 'nothing left over');
  return out;
}

const attBytes = Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0x80, ...Buffer.from('attachment ünïcødé')]);
const attDigest = md5Digest(attBytes);

const docs: CopiedDoc[] = [
  {
    id: 'plain',
    leaves: [{ path: ['1-abc'], deleted: false, stored: encodeRevision({ b: '{"v":1}' }) }],
  },
  {
    id: 'conflicted',
    leaves: [
      { path: ['3-ccc', '2-bbb', '1-aaa'], deleted: false, stored: encodeRevision({ b: '{"side":"c"}' }) },
      { path: ['2-ddd', '1-aaa'], deleted: false, stored: encodeRevision({ b: '{"side":"d"}' }) },
      { path: ['4-eee', '3-eee', '2-bbb', '1-aaa'], deleted: true, stored: encodeRevision({ b: '{}' }) },
    ],
  },
  {
    id: 'tombstone',
    leaves: [{ path: ['2-dead', '1-live'], deleted: true, stored: encodeRevision({ b: '{"why":"gone"}' }) }],
  },
  {
    id: 'with-att',
    leaves: [
      {
        path: ['1-att'],
        deleted: false,
        stored: encodeRevision({
          b: '{"x":"y"}',
          a: {
            'f.bin': { content_type: 'application/octet-stream', digest: attDigest, length: 25, revpos: 1 },
          },
        }),
      },
    ],
  },
  {
    id: '_design/app',
    leaves: [{ path: ['1-d'], deleted: false, stored: encodeRevision({ b: '{"views":{}}' }) }],
  },
  { id: 'émile', leaves: [{ path: ['1-e'], deleted: false, stored: encodeRevision({ b: '{"t":"ü"}' }) }] },
  {
    id: '日本語/ドキュメント',
    leaves: [{ path: ['1-f'], deleted: false, stored: encodeRevision({ b: '{}' }) }],
  },
  { id: '😀 smile', leaves: [{ path: ['1-g'], deleted: true, stored: Buffer.alloc(0) }] },
  {
    id: 'x'.repeat(70_000),
    leaves: [{ path: ['1-long'], deleted: false, stored: Buffer.from([0, 1, 2, 3, 4]) }],
  },
];

/** A whole stream: header, per document its attachments then the doc, then end. */
function stream(): { bytes: Buffer; frames: CopyFrame[] } {
  const writer = new CopyWriter();
  const frames: CopyFrame[] = [];
  const parts: Buffer[] = [];
  const header = { seq: 123456789, doc_count: 7, doc_del_count: 2 };
  writer.header(header);
  frames.push({ kind: 'header', header });
  for (const doc of docs) {
    if (doc.id === 'with-att') {
      writer.attachment(attDigest, attBytes);
      frames.push({ kind: 'attachment', digest: attDigest, bytes: attBytes });
      writer.attachment('md5-empty', Buffer.alloc(0));
      frames.push({ kind: 'attachment', digest: 'md5-empty', bytes: Buffer.alloc(0) });
    }
    writer.doc(doc);
    frames.push({ kind: 'doc', doc });
    if (writer.full) parts.push(writer.take());
  }
  writer.end(docs.length, 2);
  frames.push({ kind: 'end', docs: docs.length, unreadable: 2 });
  parts.push(writer.take());
  return { bytes: Buffer.concat(parts), frames };
}

void describe('database copy wire: CopyWriter → CopyReader', () => {
  void it('round-trips header, attachments, docs (conflicts, tombstones, unicode ids) and end', () => {
    const { bytes, frames } = stream();
    const reader = new CopyReader();
    reader.feed(bytes);
    const decoded = drain(reader);
    assert.deepEqual(decoded, frames);
    assert.equal(reader.buffered, 0);
    // Spot checks that do not lean on deepEqual of the whole stream.
    const conflicted = decoded.find((f) => f.kind === 'doc' && f.doc.id === 'conflicted');
    assert.ok(conflicted?.kind === 'doc');
    assert.deepEqual(
      conflicted.doc.leaves.map((l) => [l.path, l.deleted]),
      [
        [['3-ccc', '2-bbb', '1-aaa'], false],
        [['2-ddd', '1-aaa'], false],
        [['4-eee', '3-eee', '2-bbb', '1-aaa'], true],
      ],
    );
    assert.equal(conflicted.doc.leaves[1].stored.toString('utf8', 1), '{"side":"d"}');
    const att = decoded.find((f) => f.kind === 'attachment' && f.bytes.length > 0);
    assert.ok(att?.kind === 'attachment');
    assert.equal(att.digest, attDigest);
    assert.equal(md5Digest(att.bytes), attDigest);
    const ids = decoded.flatMap((f) => (f.kind === 'doc' ? [f.doc.id] : []));
    assert.deepEqual(
      ids,
      docs.map((d) => d.id),
    );
    assert.equal(ids[7], '😀 smile');
    const smile = decoded.find((f) => f.kind === 'doc' && f.doc.id === '😀 smile');
    assert.ok(
      smile?.kind === 'doc' && smile.doc.leaves[0].deleted && smile.doc.leaves[0].stored.length === 0,
    );
  });

  void it('decodes the same frames from the bytes fed one at a time', () => {
    const { bytes, frames } = stream();
    assert.deepEqual(
      decodeInChunks(bytes, () => 1),
      frames,
    );
  });

  void it('decodes the same frames from the bytes fed in random chunk sizes', () => {
    const { bytes, frames } = stream();
    for (let seed = 1; seed <= 20; seed++) {
      const rng = prng(seed);
      const max = [4, 16, 300, 5000, 90_000][seed % 5];
      assert.deepEqual(
        decodeInChunks(bytes, () => 1 + int(rng, max)),
        frames,
        `seed ${seed}`,
      );
    }
  });

  void it('waits for the rest of a frame: nothing is decoded from a part of it', () => {
    const writer = new CopyWriter();
    writer.doc(docs[1]);
    const bytes = writer.take();
    const reader = new CopyReader();
    reader.feed(bytes.subarray(0, 3));
    assert.equal(reader.next(), undefined, 'half a frame header');
    reader.feed(bytes.subarray(3, bytes.length - 1));
    assert.equal(reader.next(), undefined, 'all but the last byte');
    assert.equal(reader.buffered, bytes.length - 1);
    reader.feed(bytes.subarray(bytes.length - 1));
    assert.deepEqual(reader.next(), { kind: 'doc', doc: docs[1] });
    assert.equal(reader.next(), undefined);
    assert.equal(reader.buffered, 0);
  });

  void it('take() hands out the bytes so far and starts over', () => {
    const writer = new CopyWriter();
    writer.header({ seq: 1, doc_count: 1, doc_del_count: 0 });
    const first = writer.take();
    assert.ok(first.length > 5);
    assert.equal(writer.take().length, 0, 'nothing written since');
    writer.end(1, 0);
    const second = writer.take();
    const reader = new CopyReader();
    reader.feed(second);
    assert.deepEqual(drain(reader), [{ kind: 'end', docs: 1, unreadable: 0 }]);
    // The first chunk is not overwritten by later frames.
    reader.feed(first);
    assert.deepEqual(drain(reader), [{ kind: 'header', header: { seq: 1, doc_count: 1, doc_del_count: 0 } }]);
  });

  void it('a frame larger than the buffer grows it and keeps what was written before', () => {
    const writer = new CopyWriter();
    writer.header({ seq: 9, doc_count: 1, doc_del_count: 0 });
    const big = Buffer.alloc(1_300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    writer.attachment(md5Digest(big), big);
    const doc: CopiedDoc = {
      id: 'big',
      leaves: [
        {
          path: ['1-a'],
          deleted: false,
          stored: Buffer.concat([Buffer.from([0]), Buffer.alloc(700_000, 0x61)]),
        },
      ],
    };
    writer.doc(doc);
    writer.end(1, 0);
    const reader = new CopyReader();
    reader.feed(writer.take());
    assert.deepEqual(drain(reader), [
      { kind: 'header', header: { seq: 9, doc_count: 1, doc_del_count: 0 } },
      { kind: 'attachment', digest: md5Digest(big), bytes: big },
      { kind: 'doc', doc },
      { kind: 'end', docs: 1, unreadable: 0 },
    ]);
  });
});

void describe('database copy wire: full', () => {
  /** An attachment frame of exactly `total` bytes (5 header + 2 + digest + body). */
  const attachmentOf = (writer: CopyWriter, total: number): void => {
    writer.attachment('d', Buffer.alloc(total - 5 - 2 - 1, 7));
  };

  void it('is false below 256 KiB and true from 256 KiB on', () => {
    const writer = new CopyWriter();
    assert.equal(writer.full, false);
    writer.header({ seq: 0, doc_count: 0, doc_del_count: 0 });
    assert.equal(writer.full, false);
    const soFar = writer.take().length;
    writer.header({ seq: 0, doc_count: 0, doc_del_count: 0 });
    attachmentOf(writer, CHUNK_BYTES - soFar - 1);
    assert.equal(writer.full, false, 'one byte short');
    writer.end(0, 0);
    assert.equal(writer.full, true);
    const chunk = writer.take();
    assert.ok(chunk.length >= CHUNK_BYTES);
    assert.equal(writer.full, false, 'take() starts over');

    attachmentOf(writer, CHUNK_BYTES);
    assert.equal(writer.full, true, 'exactly 256 KiB');
  });

  void it('becomes true while writing many small docs, and every chunk decodes', () => {
    const writer = new CopyWriter();
    const reader = new CopyReader();
    const doc = (i: number): CopiedDoc => ({
      id: `doc-${String(i).padStart(6, '0')}`,
      leaves: [
        { path: [`1-${i}`], deleted: i % 5 === 0, stored: encodeRevision({ b: JSON.stringify({ i }) }) },
      ],
    });
    let chunks = 0;
    let read = 0;
    for (let i = 0; i < 20_000; i++) {
      writer.doc(doc(i));
      if (writer.full) {
        const chunk = writer.take();
        assert.ok(chunk.length >= CHUNK_BYTES && chunk.length < CHUNK_BYTES + 100, String(chunk.length));
        chunks++;
        reader.feed(chunk);
        for (const f of drain(reader)) {
          assert.deepEqual(f, { kind: 'doc', doc: doc(read) });
          read++;
        }
      }
    }
    reader.feed(writer.take());
    for (const f of drain(reader)) {
      assert.deepEqual(f, { kind: 'doc', doc: doc(read) });
      read++;
    }
    assert.equal(read, 20_000);
    assert.ok(chunks >= 2, `${chunks} full chunks`);
  });
});

void describe('database copy wire: broken streams', () => {
  const docPayload = (doc: CopiedDoc): Buffer => {
    const writer = new CopyWriter();
    writer.doc(doc);
    return writer.take().subarray(5);
  };
  const decode = (bytes: Buffer): CopyFrame[] => {
    const reader = new CopyReader();
    reader.feed(bytes);
    return drain(reader);
  };

  void it('a doc frame whose payload is cut short throws', () => {
    const payload = docPayload(docs[1]);
    for (const cut of [1, 3, 5, 20, payload.length - 1]) {
      assert.throws(
        () => decode(frame(CopyFrameKind.Doc, payload.subarray(0, payload.length - cut))),
        /cut short/,
        `${cut} bytes short`,
      );
    }
  });

  void it('a doc frame with trailing bytes, or a leaf without a revision, throws', () => {
    const payload = docPayload(docs[0]);
    assert.throws(
      () => decode(frame(CopyFrameKind.Doc, Buffer.concat([payload, Buffer.from([0])]))),
      /trailing/,
    );
    const noPath = docPayload({ id: 'p', leaves: [{ path: [], deleted: false, stored: Buffer.from('x') }] });
    assert.throws(() => decode(frame(CopyFrameKind.Doc, noPath)), /without a revision/);
  });

  void it('an unknown frame kind throws', () => {
    for (const kind of [0, 5, 9, 255]) {
      assert.throws(() => decode(frame(kind, Buffer.from('{}'))), /broken stream/, `kind ${kind}`);
    }
    // After good frames too.
    const writer = new CopyWriter();
    writer.header({ seq: 1, doc_count: 0, doc_del_count: 0 });
    const reader = new CopyReader();
    reader.feed(Buffer.concat([writer.take(), frame(42, Buffer.alloc(3))]));
    assert.equal(reader.next()?.kind, 'header');
    assert.throws(() => reader.next(), /broken stream/);
  });

  void it('a header or end frame without its numbers throws', () => {
    assert.throws(
      () => decode(frame(CopyFrameKind.Header, Buffer.from('{"seq":1,"doc_count":2}'))),
      /header/,
    );
    assert.throws(() => decode(frame(CopyFrameKind.Header, Buffer.from('not json'))));
    assert.throws(() => decode(frame(CopyFrameKind.End, Buffer.from('{"docs":"3"}'))), /end/);
  });

  void it('carries paths and leaf counts beyond 16 bits (any revs limit)', () => {
    const path = Array.from({ length: 0x10001 }, (_, i) => `${0x10001 - i}-a`);
    const leaf = { path: ['1-a'], deleted: false, stored: Buffer.from([0]) };
    const writer = new CopyWriter();
    writer.doc({ id: 'deep', leaves: [{ path, deleted: false, stored: Buffer.from([0]) }] });
    writer.doc({ id: 'wide', leaves: Array.from({ length: 0x10001 }, () => leaf) });
    const reader = new CopyReader();
    reader.feed(writer.take());
    const deep = reader.next();
    const wide = reader.next();
    assert.ok(deep?.kind === 'doc' && wide?.kind === 'doc');
    assert.equal(deep.doc.leaves[0]?.path.length, 0x10001);
    assert.equal(wide.doc.leaves.length, 0x10001);
  });
});
