/**
 * Execution devices: parse a device name (`cpu`, `cuda`, `webgpu`, optionally `cuda:1`) and
 * check, before ONNX Runtime is asked for a session, that the native pieces a GPU provider
 * needs are on this machine.
 *
 * ONNX Runtime reports a missing GPU provider with a native log line and an error such as
 * "Failed to load shared library", and the npm package of onnxruntime-node ships neither the
 * CUDA provider (its install script downloads it from NuGet) nor the Vulkan loader WebGPU
 * needs. ld3 looks for both first and fails with one {@linkcode DeviceUnavailableError} that
 * says what is missing and how to get it — never a silent fall-back to the CPU.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";

/** The execution-provider families ld3 can run on. */
export type DeviceKind = "cpu" | "cuda" | "webgpu";
/** The accepted {@linkcode DeviceKind} values. */
export const DEVICE_KINDS: readonly DeviceKind[] = ["cpu", "cuda", "webgpu"];

/**
 * Where a network runs: ONNX Runtime's CPU provider, its CUDA provider (NVIDIA GPUs) or its
 * WebGPU provider (Dawn over Vulkan on Linux), optionally with a device index (`"cuda:1"`).
 */
export type Device = DeviceKind | `${DeviceKind}:${number}`;

/** A parsed {@linkcode Device} name. */
export interface ParsedDevice {
  /** The provider family. */
  readonly kind: DeviceKind;
  /** Device index; always 0 for `cpu` and `webgpu`. */
  readonly index: number;
}

/**
 * Parse a device name: `cpu`, `cuda`, `webgpu`, or one of them with `:<index>`.
 *
 * Only CUDA takes an index other than 0: the WebGPU provider of onnxruntime-node picks its
 * adapter itself and offers no way to choose one.
 *
 * @throws {RangeError} naming the bad device
 */
export function parseDevice(device: string): ParsedDevice {
  const match = /^(cpu|cuda|webgpu)(?::(\d{1,4}))?$/.exec(device);
  if (!match) {
    throw new RangeError(
      `Unsupported device: "${device}" (expected ${
        DEVICE_KINDS.join(", ")
      }, optionally with an index such as cuda:1)`,
    );
  }
  const kind = match[1] as DeviceKind;
  const index = match[2] === undefined ? 0 : Number(match[2]);
  if (index !== 0 && kind !== "cuda") {
    throw new RangeError(
      `Unsupported device: "${device}": only cuda takes a device index (${kind} picks its own)`,
    );
  }
  return { kind, index };
}

/** A GPU provider cannot run here: names what is missing and how to get it. */
export class DeviceUnavailableError extends Error {
  /** The device asked for, as given. */
  readonly device: string;
  /** What is missing (files, a loader, an adapter). */
  readonly missing: string;
  constructor(device: string, missing: string, remedy: string, options?: { cause?: unknown }) {
    super(`Device "${device}" is unavailable: ${missing}; ${remedy}`, options);
    this.name = "DeviceUnavailableError";
    this.device = device;
    this.missing = missing;
  }
}

/** The shared libraries the CUDA provider of onnxruntime-node loads beside its core library. */
export const CUDA_PROVIDER_LIBRARIES: readonly string[] = [
  "libonnxruntime_providers_shared.so",
  "libonnxruntime_providers_cuda.so",
];

/** The Vulkan loader that ONNX Runtime's WebGPU provider (Dawn) opens on Linux. */
export const VULKAN_LOADER = "libvulkan.so.1";

/** How to get the CUDA provider (one sentence, used in messages and docs). */
export const CUDA_REMEDY =
  "on a networked machine run `deno install --allow-scripts=npm:onnxruntime-node` in the project " +
  "(onnxruntime-node's install script then downloads them from NuGet package " +
  "Microsoft.ML.OnnxRuntime.Gpu.Linux of the same version), make CUDA 12 and cuDNN 9 libraries " +
  "loadable at run time, or use --device webgpu or cpu";

/** How to get the WebGPU provider's Vulkan loader and driver. */
export const VULKAN_REMEDY =
  "install the Vulkan loader (Debian/Ubuntu: `apt-get install libvulkan1`, or unpack that " +
  "package and add its lib folder to LD_LIBRARY_PATH) and a GPU Vulkan driver (e.g. NVIDIA's " +
  "nvidia_icd.json; point VK_DRIVER_FILES at it when it is not in a standard place), or use " +
  "--device cuda or cpu";

/**
 * The folder of the ONNX Runtime core library loaded into this process, read from
 * `/proc/self/maps` (ONNX Runtime loads provider libraries from that same folder).
 * `undefined` where that file cannot be read (not Linux, no read permission) or the library is
 * not loaded yet.
 */
export function ortLibraryDir(mapsFile = "/proc/self/maps"): string | undefined {
  let maps: string;
  try {
    maps = readFileSync(mapsFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of maps.split("\n")) {
    const path = line.slice(line.indexOf("/"));
    if (line.includes("/") && /\/libonnxruntime\.so(\.\d+)*$/.test(path)) return dirname(path);
  }
  return undefined;
}

/** The CUDA provider libraries missing from a folder (empty when all are present). */
export function missingCudaLibraries(dir: string): string[] {
  return CUDA_PROVIDER_LIBRARIES.filter((name) => !existsSync(join(dir, name)));
}

/** Where {@linkcode findSharedLibrary} looks. */
export interface LibrarySearchOptions {
  /** Colon-separated folders searched first. @default {the LD_LIBRARY_PATH environment variable} */
  libraryPath?: string;
  /** The dynamic linker's cache, searched for `/<name>` entries. @default {"/etc/ld.so.cache"} */
  cacheFile?: string;
  /** Folders searched last. @default {the standard library folders of x86-64 and arm64 Linux} */
  dirs?: readonly string[];
}

const STANDARD_LIB_DIRS = [
  "/lib",
  "/usr/lib",
  "/lib64",
  "/usr/lib64",
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/local/lib",
];

/**
 * Find a shared library the way the dynamic linker would (LD_LIBRARY_PATH, then the
 * ld.so cache, then the standard folders), returning its path or `undefined`.
 */
export function findSharedLibrary(
  name: string,
  options: LibrarySearchOptions = {},
): string | undefined {
  let libraryPath = options.libraryPath;
  if (libraryPath === undefined) {
    try {
      libraryPath = Deno.env.get("LD_LIBRARY_PATH") ?? "";
    } catch {
      libraryPath = ""; // no --allow-env: the cache and standard folders still answer
    }
  }
  for (const dir of libraryPath.split(delimiter).filter((d) => d !== "")) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  try {
    // The cache is binary, but the paths in it are NUL-terminated ASCII.
    const cache = new TextDecoder("latin1").decode(
      readFileSync(options.cacheFile ?? "/etc/ld.so.cache"),
    );
    for (const entry of cache.split("\0")) {
      if (entry.endsWith(`/${name}`) && existsSync(entry)) return entry;
    }
  } catch {
    // No cache (or not readable): fall through to the standard folders.
  }
  for (const dir of options.dirs ?? STANDARD_LIB_DIRS) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Overrides for {@linkcode checkDevice} (tests, unusual installs). */
export interface CheckDeviceOptions {
  /** Folder of ONNX Runtime's core library. @default {ortLibraryDir()} */
  ortDir?: string;
  /** Where to look for the Vulkan loader. @default {the dynamic linker's search} */
  librarySearch?: LibrarySearchOptions;
}

/**
 * Check that a device can be asked of ONNX Runtime: the name parses, and for `cuda` the
 * provider libraries sit beside ONNX Runtime's core library, for `webgpu` the Vulkan loader
 * can be found. Returns the parsed device.
 *
 * A check that cannot be made (the core library's folder is unknown) passes; ONNX Runtime's
 * own failure is then turned into the same error by `createSession`.
 *
 * @throws {RangeError} for a bad device name
 * @throws {DeviceUnavailableError} when a provider's libraries are missing
 */
export function checkDevice(device: string, options: CheckDeviceOptions = {}): ParsedDevice {
  const parsed = parseDevice(device);
  if (parsed.kind === "cuda") {
    const dir = options.ortDir ?? ortLibraryDir();
    const missing = dir === undefined ? [] : missingCudaLibraries(dir);
    if (missing.length > 0) {
      throw new DeviceUnavailableError(
        device,
        `ONNX Runtime's CUDA provider libraries ${missing.join(", ")} are missing from ${dir}`,
        CUDA_REMEDY,
      );
    }
  } else if (parsed.kind === "webgpu") {
    if (findSharedLibrary(VULKAN_LOADER, options.librarySearch) === undefined) {
      throw new DeviceUnavailableError(
        device,
        `the Vulkan loader ${VULKAN_LOADER} that the WebGPU provider needs was not found ` +
          "(searched LD_LIBRARY_PATH, /etc/ld.so.cache and the standard library folders)",
        VULKAN_REMEDY,
      );
    }
  }
  return parsed;
}

/**
 * Turn ONNX Runtime's own failure to start a GPU provider into a
 * {@linkcode DeviceUnavailableError}; any other error (a bad model, say) is returned as is.
 */
export function explainProviderError(device: string, error: unknown): unknown {
  const kind = DEVICE_KINDS.find((k) => device === k || device.startsWith(`${k}:`));
  if (!(error instanceof Error) || kind === undefined || kind === "cpu") return error;
  const first = error.message.trim().split("\n")[0];
  if (kind === "cuda" && /Failed to load|cannot open shared object|libcu|cudnn|CUDA/i.test(first)) {
    return new DeviceUnavailableError(
      device,
      `ONNX Runtime could not start its CUDA provider (${first})`,
      CUDA_REMEDY,
      { cause: error },
    );
  }
  if (kind === "webgpu" && /adapter|vulkan|webgpu|dawn/i.test(first)) {
    return new DeviceUnavailableError(
      device,
      `ONNX Runtime's WebGPU provider found no usable GPU (${
        first.replace(/^.*?(Failed to get a WebGPU adapter)/, "$1")
      }): a GPU Vulkan driver is needed (software Vulkan such as Mesa lavapipe is rejected)`,
      VULKAN_REMEDY,
      { cause: error },
    );
  }
  return error;
}
