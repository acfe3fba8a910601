/**
 * The project's own `deno lint` rules, for the shape of `lib/` (registered in `deno.json`):
 *
 * - `lib-layout/upward-import`: `lib/` is in layers (the table {@linkcode LAYERS}); a module
 *   imports only from its own layer or the ones below it.
 * - `lib-layout/max-function-lines`: no function in `lib/` runs past
 *   {@linkcode MAX_FUNCTION_LINES} lines; a longer one is a sequence of named steps waiting to
 *   be written as such.
 *
 * `tests/layout_test.ts` runs the same rules over every file and adds what a per-file rule
 * cannot see: import cycles.
 *
 * @module
 */

/** A layer of `lib/`: the folders (relative to `lib/`) it holds, lowest layer first. */
export interface Layer {
  name: string;
  /** Folder prefixes relative to `lib/`; `""` is the top level of `lib/` itself. */
  folders: readonly string[];
}

/**
 * The layers of `lib/`, from the bottom up. A module may import from its own layer and any layer
 * before it in this list, never from a later one.
 */
export const LAYERS: readonly Layer[] = [
  { name: "math core", folders: ["", "solvers/"] },
  { name: "files and pictures", folders: ["io/"] },
  { name: "ONNX runtime", folders: ["onnx/"] },
  { name: "gradients", folders: ["vjp/", "grad/"] },
  { name: "metrics", folders: ["metrics/"] },
  { name: "LD3 algorithm", folders: ["ld3/"] },
  { name: "pipelines", folders: ["pipelines/"] },
];

/** The longest function `lib/` may hold, in lines. */
export const MAX_FUNCTION_LINES = 120;

/** The part of a path after its last `/lib/`, or undefined outside `lib/`. */
export function libRelative(path: string): string | undefined {
  const normalized = path.replaceAll("\\", "/");
  const at = normalized.lastIndexOf("/lib/");
  return at < 0 ? undefined : normalized.slice(at + "/lib/".length);
}

/** Index into {@linkcode LAYERS} of a path relative to `lib/`. */
export function layerIndex(libPath: string): number {
  const slash = libPath.lastIndexOf("/");
  const folder = slash < 0 ? "" : libPath.slice(0, slash + 1);
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach((layer, i) => {
    for (const prefix of layer.folders) {
      const matches = prefix === "" ? folder === "" : folder.startsWith(prefix);
      if (matches && prefix.length > bestLength) [best, bestLength] = [i, prefix.length];
    }
  });
  if (best < 0) throw new RangeError(`lib/${libPath} is in no layer of tools/lint_plugin.ts`);
  return best;
}

/** Resolves a relative specifier against the `lib/`-relative path of the importing file. */
export function resolveLibPath(fromLibPath: string, specifier: string): string | undefined {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  const parts = fromLibPath.split("/").slice(0, -1);
  for (const segment of specifier.split("/")) {
    if (segment === "..") {
      if (parts.length === 0) return undefined; // leaves lib/
      parts.pop();
    } else if (segment !== ".") {
      parts.push(segment);
    }
  }
  return parts.join("/");
}

/** Why importing `specifier` from `fromLibPath` breaks the layering, or undefined. */
export function upwardImport(fromLibPath: string, specifier: string): string | undefined {
  const target = resolveLibPath(fromLibPath, specifier);
  if (target === undefined) return undefined;
  const from = layerIndex(fromLibPath);
  const to = layerIndex(target);
  if (to <= from) return undefined;
  return `lib/${fromLibPath} (${LAYERS[from].name}) imports lib/${target} ` +
    `(${LAYERS[to].name}), a layer above it: move the shared code down or invert the call`;
}

type Ranged = Deno.lint.Node & { range: Deno.lint.Range };

const plugin: Deno.lint.Plugin = {
  name: "lib-layout",
  rules: {
    "upward-import": {
      create(context) {
        const libPath = libRelative(context.filename);
        if (libPath === undefined) return {};
        const check = (node: Ranged, source: { value: unknown } | null | undefined) => {
          if (typeof source?.value !== "string") return;
          const problem = upwardImport(libPath, source.value);
          if (problem) context.report({ node, message: problem });
        };
        return {
          ImportDeclaration: (node) => check(node, node.source),
          ExportAllDeclaration: (node) => check(node, node.source),
          ExportNamedDeclaration: (node) => check(node, node.source),
          ImportExpression: (node) =>
            check(node, node.source.type === "Literal" ? node.source : undefined),
        };
      },
    },
    "max-function-lines": {
      create(context) {
        if (libRelative(context.filename) === undefined) return {};
        const text = context.sourceCode.text;
        const lineStarts = [0];
        for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
        const lineOf = (offset: number) => {
          let lo = 0, hi = lineStarts.length - 1;
          while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (lineStarts[mid] <= offset) lo = mid;
            else hi = mid - 1;
          }
          return lo + 1;
        };
        const check = (node: Ranged, name: string) => {
          const lines = lineOf(node.range[1]) - lineOf(node.range[0]) + 1;
          if (lines <= MAX_FUNCTION_LINES) return;
          context.report({
            node,
            message: `${name} is ${lines} lines (at most ${MAX_FUNCTION_LINES} in lib/): ` +
              "split it into named steps",
          });
        };
        const nameOf = (key: Deno.lint.Node | null | undefined) =>
          key?.type === "Identifier" ? key.name : "a function";
        return {
          FunctionDeclaration: (node) => check(node, `function ${nameOf(node.id)}`),
          MethodDefinition: (node) => check(node, `method ${nameOf(node.key)}`),
          VariableDeclarator(node) {
            const init = node.init;
            if (init?.type === "ArrowFunctionExpression" || init?.type === "FunctionExpression") {
              check(init, `function ${nameOf(node.id)}`);
            }
          },
        };
      },
    },
  },
};

export default plugin;
