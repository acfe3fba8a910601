import assert from "node:assert/strict";
import { deflateRawSync } from "node:zlib";
import { crc32, decodeNpz, encodeNpz, readNpz, writeNpz } from "../../lib/io/npz.ts";

const FIXTURES = new URL("../fixtures/data/", import.meta.url);

function fixtureF4(): Float32Array {
  return Float32Array.from({ length: 24 }, (_, i) => (i - 11.5) / 4);
}

Deno.test("crc32() matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  // Incremental use gives the same result.
  const bytes = new TextEncoder().encode("hello, world");
  assert.equal(crc32(bytes.subarray(5), crc32(bytes.subarray(0, 5))), crc32(bytes));
});

Deno.test("encodeNpz() round-trips and is deterministic", () => {
  const record = {
    z: { data: new Float32Array([1, -2, 3, 4, 5, 6]), shape: [1, 2, 3] },
    x: { data: new Float64Array([0.5]), shape: [] },
    c: { data: new Int32Array([9, 8]), shape: [2] },
  };
  const bytes = encodeNpz(record);
  assert.deepEqual(encodeNpz(record), bytes);
  const back = decodeNpz(bytes);
  assert.deepEqual(Object.keys(back), ["z", "x", "c"]);
  assert.deepEqual(back.z.shape, [1, 2, 3]);
  assert.deepEqual(back.z.data, record.z.data);
  assert.deepEqual(back.x.data, record.x.data);
  assert.deepEqual(back.c.data, record.c.data);
});

Deno.test("decodeNpz() reads numpy.savez and numpy.savez_compressed archives", async () => {
  const stored = decodeNpz(await Deno.readFile(new URL("numpy_stored.npz", FIXTURES)));
  assert.deepEqual(stored.z.data, fixtureF4());
  assert.deepEqual(stored.z.shape, [2, 3, 4]);
  assert.deepEqual(stored.x.data, new Float64Array([3.25, 3.25]));
  const deflated = decodeNpz(await Deno.readFile(new URL("numpy_deflated.npz", FIXTURES)));
  assert.deepEqual(deflated.z.data, fixtureF4());
  assert.deepEqual(deflated.c.data, new Int32Array([3]));
});

Deno.test("decodeNpz() reads deflated entries and detects corruption", () => {
  const bytes = encodeNpz({ a: { data: new Float32Array(64).fill(1.25), shape: [8, 8] } });
  // Flip one data byte (the last value's highest byte): the CRC check must fail.
  const corrupt = bytes.slice();
  const endOfData = bytes.length - 22 - 46 - 5;
  corrupt[endOfData - 1] ^= 0x40;
  assert.throws(() => decodeNpz(corrupt), /CRC-32 mismatch in \.npz entry: a\.npy/);
  assert.throws(() => decodeNpz(new Uint8Array(100)), /no zip end-of-central-directory record/);

  // Build a deflated archive by hand from the stored one: same headers, method 8.
  const view = new DataView(bytes.buffer);
  const nameLength = view.getUint16(26, true);
  const body = bytes.subarray(30 + nameLength, endOfData);
  const packed = new Uint8Array(deflateRawSync(body));
  const name = bytes.subarray(30, 30 + nameLength);
  const local = bytes.slice(0, 30);
  const central = bytes.slice(endOfData, endOfData + 46);
  for (const header of [local, central]) {
    const v = new DataView(header.buffer);
    const base = header === local ? 4 : 6;
    v.setUint16(base + 4, 8, true);
    v.setUint32(base + 14, packed.length, true);
  }
  const end = bytes.slice(bytes.length - 22);
  const centralStart = 30 + nameLength + packed.length;
  new DataView(end.buffer).setUint32(16, centralStart, true);
  const archive = new Uint8Array(centralStart + 46 + nameLength + 22);
  archive.set(local, 0);
  archive.set(name, 30);
  archive.set(packed, 30 + nameLength);
  archive.set(central, centralStart);
  archive.set(name, centralStart + 46);
  archive.set(end, centralStart + 46 + nameLength);
  assert.ok(packed.length < body.length);
  assert.deepEqual(decodeNpz(archive).a.data, new Float32Array(64).fill(1.25));
});

Deno.test("writeNpz() and readNpz() round-trip through a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeNpz(`${dir}/s.npz`, { x: { data: new Uint8Array([1, 2, 3]), shape: [3] } });
    assert.deepEqual((await readNpz(`${dir}/s.npz`)).x.data, new Uint8Array([1, 2, 3]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
