import assert from "node:assert/strict";
import { decodeNpy, encodeNpy, readNpy, writeNpy } from "../../lib/io/npy.ts";

const FIXTURES = new URL("../fixtures/data/", import.meta.url);

/** The array tests/fixtures/data/make_fixtures.py saves as numpy_f4.npy. */
function fixtureF4(): Float32Array {
  return Float32Array.from({ length: 24 }, (_, i) => (i - 11.5) / 4);
}

Deno.test("encodeNpy() round-trips every supported dtype", () => {
  const cases = [
    { data: new Float32Array([1.5, -2, 3e-20, Infinity]), shape: [2, 2] },
    { data: new Float64Array([Math.PI, -0, 1e300]), shape: [3] },
    { data: new Uint8Array([0, 255, 7, 8, 9, 10]), shape: [1, 2, 3] },
    { data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]), shape: [2, 1] },
    { data: new BigInt64Array([-(2n ** 63n), 2n ** 40n]), shape: [2] },
    { data: new Float32Array([42]), shape: [] },
    { data: new Float64Array(0), shape: [0, 5] },
  ];
  for (const { data, shape } of cases) {
    const bytes = encodeNpy(data, shape);
    // Header plus magic is a multiple of 64 bytes, so the data is aligned.
    assert.equal((bytes.length - data.byteLength) % 64, 0);
    const back = decodeNpy(bytes);
    assert.deepEqual(back.shape, shape);
    assert.deepEqual(back.data, data);
    assert.equal(back.data.constructor, data.constructor);
  }
});

Deno.test("encodeNpy() writes the same bytes as numpy.save", async () => {
  const expected = await Deno.readFile(new URL("numpy_f4.npy", FIXTURES));
  assert.deepEqual(encodeNpy(fixtureF4(), [2, 3, 4]), expected);
});

Deno.test("decodeNpy() reads files written by numpy", async () => {
  const read = async (name: string) => decodeNpy(await Deno.readFile(new URL(name, FIXTURES)));
  const f4 = await read("numpy_f4.npy");
  assert.equal(f4.dtype, "float32");
  assert.deepEqual(f4.shape, [2, 3, 4]);
  assert.deepEqual(f4.data, fixtureF4());
  const be = await read("numpy_f8_be.npy");
  assert.equal(be.dtype, "float64");
  assert.deepEqual(be.data, new Float64Array([1.5, -2.25, 1e300]));
  const i8 = await read("numpy_i8.npy");
  assert.deepEqual(i8.shape, [2, 2]);
  assert.deepEqual(i8.data, new BigInt64Array([-3n, 0n, 2n ** 40n, 7n]));
  const u1 = await read("numpy_u1.npy");
  assert.deepEqual(u1.data, new Uint8Array([0, 50, 100, 150, 200]));
  const scalar = await read("numpy_i4_scalar.npy");
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual(scalar.data, new Int32Array([-7]));
});

Deno.test("decodeNpy() rejects malformed input with a clear error", () => {
  assert.throws(() => decodeNpy(new Uint8Array(20)), /Not a \.npy file: bad magic string/);
  const good = encodeNpy(new Float32Array([1, 2, 3]), [3]);
  assert.throws(() => decodeNpy(good.subarray(0, good.length - 1)), /Truncated \.npy data/);
  const complex = good.slice();
  const at = new TextDecoder("latin1").decode(good).indexOf("<f4");
  complex.set(new TextEncoder().encode("<c8"), at);
  assert.throws(() => decodeNpy(complex), /Unsupported \.npy dtype: <c8/);
  assert.throws(() => encodeNpy(new Float32Array(3), [2, 2]), /holds 4 values but the data has 3/);
});

Deno.test("writeNpy() and readNpy() round-trip through a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeNpy(`${dir}/a.npy`, new Float64Array([1, 2, 3, 4, 5, 6]), [3, 2]);
    const back = await readNpy(`${dir}/a.npy`);
    assert.deepEqual(back.shape, [3, 2]);
    assert.deepEqual(back.data, new Float64Array([1, 2, 3, 4, 5, 6]));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.npy"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
