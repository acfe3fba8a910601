/**
 * Test helpers that read the imports of `mod.ts` and `lib/` as text (comments stripped), for
 * the remote-import test and the layout test.
 */
import { join } from "node:path";

/** The repository root. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** An import that lib/ may not make: where, and why. */
export interface BadImport {
  file: string;
  specifier: string;
  reason: string;
}

/** `npm:name@x.y.z[/sub/path]` with an exact version (prerelease allowed, no ranges or tags). */
const PINNED_NPM = /^npm:(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*@\d+\.\d+\.\d+(-[\w.]+)?(\/.*)?$/i;

/** Why `specifier` is not allowed in lib/, or undefined when it is. */
export function importProblem(specifier: string): string | undefined {
  if (specifier.startsWith("./") || specifier.startsWith("../")) return undefined;
  if (specifier.startsWith("node:")) return undefined;
  if (specifier.startsWith("npm:")) {
    return PINNED_NPM.test(specifier) ? undefined : "npm specifier without an exact version";
  }
  if (/^(jsr|https?|file):/.test(specifier)) return "remote or absolute specifier";
  return "bare specifier (needs the deno.json import map)";
}

/** Source without comments, so examples in JSDoc are not taken for imports. */
export function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** Every static, side-effect, re-export and literal dynamic import specifier of a module. */
export function importSpecifiers(source: string): string[] {
  const code = stripComments(source);
  const found: string[] = [];
  const patterns = [
    /(?:^|[;\n])\s*(?:import|export)\s[^;'"]*?\bfrom\s*["']([^"']+)["']/g,
    /(?:^|[;\n])\s*import\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']/g,
    // npm: names kept in constants for lazy imports (lib/deps.ts) count too.
    /["'](npm:[^"']+)["']/g,
  ];
  for (const pattern of patterns) {
    for (const m of code.matchAll(pattern)) found.push(m[1]);
  }
  return [...new Set(found)];
}

/** `mod.ts` and every module under `lib/`, sorted. */
export async function libraryModules(): Promise<string[]> {
  const files = [join(ROOT, "mod.ts")];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (/\.(ts|js|mjs)$/.test(e.name)) files.push(path);
    }
  };
  await walk(join(ROOT, "lib"));
  return files.sort();
}
