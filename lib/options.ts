/**
 * Options declared once. An option's flag, type, default, help text and valid range live in one
 * {@linkcode OptionDeclaration}; from a set of them come the library's defaults and checks
 * ({@linkcode resolveOptions}), a task's command-line parser ({@linkcode parseCommandLine}), its
 * `--help` text ({@linkcode usageLines}) and the option tables of the docs
 * ({@linkcode optionsMarkdown}). Adding an option is one entry in one table.
 *
 * Names: the key is the library's camelCase name (`lrTimeDecay`), the flag the command line's
 * snake_case one (`--lr_time_decay`, as the LD3 reference tool spells it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { declareOptions, parseCommandLine, resolveOptions } from "./options.ts";
 *
 * const OPTIONS = declareOptions({
 *   steps: { flag: "steps", kind: "integer", arg: "N", help: "solver steps", default: 10, min: 1 },
 *   name: { flag: "solver_name", kind: "string", help: "solver", choices: ["euler", "heun"] },
 * });
 * assert.deepEqual(resolveOptions(OPTIONS, {}), { steps: 10 });
 * assert.deepEqual(parseCommandLine(OPTIONS, ["--steps", "4"]).values, { steps: 4 });
 * assert.throws(() => resolveOptions(OPTIONS, { steps: 0 }), /steps must be an integer >= 1: got 0/);
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** The type of an option's value. Lists are comma-separated on the command line. */
export type OptionKind =
  | "string"
  | "number"
  | "integer"
  | "boolean"
  | "strings"
  | "numbers"
  | "integers";

/** A value an option may take. */
export type OptionValue = string | number | boolean | readonly string[] | readonly number[];

/** One option: everything the library, the command line and the docs need to know of it. */
export interface OptionDeclaration {
  /** Command-line flag without the dashes (snake_case). */
  readonly flag: string;
  /** Value type. */
  readonly kind: OptionKind;
  /** One line of help; the default is appended from {@linkcode default}/`defaultText`. */
  readonly help: string;
  /** Placeholder of the value in usage lines (`N`, `FILE`). @default from the kind */
  readonly arg?: string;
  /** The value used when the option is absent. */
  readonly default?: OptionValue;
  /** The default in words, when it depends on other options or on the model. */
  readonly defaultText?: string;
  /** The allowed values of a string option (or of each item of a list). */
  readonly choices?: readonly string[];
  /** Smallest allowed number (inclusive). */
  readonly min?: number;
  /** Largest allowed number (inclusive). */
  readonly max?: number;
  /** Numbers must be strictly greater than this. */
  readonly above?: number;
  /**
   * Options that share this group name exclude each other (e.g. the three ways to give a step
   * grid): giving two is an error.
   */
  readonly exclusive?: string;
  /** The command line must give it (the library checks it too). */
  readonly required?: boolean;
  /**
   * The option is kept for one release only: what to use instead (a deprecation line is printed
   * when the command line gives it).
   */
  readonly deprecated?: string;
  /** Older flags still accepted, with a deprecation line, for one release. */
  readonly aliases?: readonly string[];
  /**
   * A `strings` option given once per item (`--shape x=1,2 --shape t=1`) instead of as one
   * comma-separated list.
   */
  readonly repeatable?: boolean;
  /** One-letter alias (`-h`). */
  readonly short?: string;
}

/** A set of declarations keyed by the library's option name. */
export type OptionDeclarations = { readonly [key: string]: OptionDeclaration };

/**
 * The TypeScript type of a declaration's value: the choices of a string option as a union when
 * `Narrow` (values after {@linkcode resolveOptions} checked them), any string otherwise (what a
 * caller may pass, checked at run time with a message naming the choices).
 */
export type ValueOf<D extends OptionDeclaration, Narrow extends boolean = true> = D["kind"] extends
  "boolean" ? boolean
  : D["kind"] extends "number" | "integer" ? number
  : D["kind"] extends "numbers" | "integers" ? number[]
  : D["kind"] extends "strings"
    ? (Narrow extends true
      ? D["choices"] extends readonly (infer C extends string)[] ? C[] : string[]
      : string[])
  : Narrow extends true ? D["choices"] extends readonly (infer C extends string)[] ? C : string
  : string;

/** Keys of the declarations marked `required`. */
export type RequiredKeys<T extends OptionDeclarations> = {
  [K in keyof T]: T[K] extends { readonly required: true } ? K : never;
}[keyof T];

/** Option values as a caller gives them: optional but for the `required` ones. */
export type OptionValues<T extends OptionDeclarations> =
  & { -readonly [K in Exclude<keyof T, RequiredKeys<T>>]?: ValueOf<T[K], false> }
  & { -readonly [K in RequiredKeys<T>]: ValueOf<T[K], false> };

/**
 * Keys of the declarations that always have a value after {@linkcode resolveOptions}: a default,
 * and no exclusive group whose other member would leave it out.
 */
export type DefaultedKeys<T extends OptionDeclarations> = {
  [K in keyof T]: T[K] extends { readonly exclusive: string } ? never
    : T[K] extends { readonly default: OptionValue } ? K
    : never;
}[keyof T];

/**
 * Option values after {@linkcode resolveOptions}: checked (so choices are narrowed) and the
 * defaulted ones always present.
 */
export type ResolvedOptions<T extends OptionDeclarations> =
  & { -readonly [K in keyof T]?: ValueOf<T[K]> }
  & { -readonly [K in DefaultedKeys<T> | RequiredKeys<T>]-?: ValueOf<T[K]> };

/**
 * Returns `declarations` as given, typed for inference, after checking that flags are unique
 * and that each default passes its own checks (so a wrong table fails at import, not mid-run).
 */
export function declareOptions<const T extends OptionDeclarations>(declarations: T): T {
  const flags = new Set<string>();
  for (const [key, d] of Object.entries(declarations)) {
    for (const flag of [d.flag, ...(d.aliases ?? [])]) {
      if (flags.has(flag)) throw new TypeError(`Option flag --${flag} is declared twice`);
      flags.add(flag);
    }
    if (d.default !== undefined) checkValue(d, d.default, key);
  }
  return declarations;
}

/**
 * The declarations with some defaults replaced: one option declared once, with the default of
 * the entry point that uses it (e.g. 10 LD3 student steps, 20 teacher steps).
 */
export function withDefaults<
  const T extends OptionDeclarations,
  const D extends { [K in keyof T]?: ValueOf<T[K]> },
>(
  declarations: T,
  defaults: D,
): WithDefaults<T, D> {
  const out: Record<string, OptionDeclaration> = { ...declarations };
  for (const [key, value] of Object.entries(defaults)) {
    if (!(key in out)) throw new TypeError(`withDefaults: no option "${key}"`);
    out[key] = { ...out[key], default: value as OptionValue };
  }
  return declareOptions(out as unknown as WithDefaults<T, D>);
}

/** The type of {@linkcode withDefaults}: the keys of `D` now have a default. */
export type WithDefaults<T extends OptionDeclarations, D> = {
  readonly [K in keyof T]: K extends keyof D ? Omit<T[K], "default"> & { readonly default: D[K] }
    : T[K];
};

/** The declarations of `keys` only, in that order. */
export function pickOptions<const T extends OptionDeclarations, const K extends keyof T>(
  declarations: T,
  keys: readonly K[],
): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, declarations[k]])) as unknown as Pick<T, K>;
}

/** The declared option values present in `values` (other fields such as callbacks dropped). */
export function declaredValues<const T extends OptionDeclarations, V extends object>(
  declarations: T,
  values: V,
): Partial<Pick<V, Extract<keyof T, keyof V>>> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(declarations)) {
    const v = (values as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out as Partial<Pick<V, Extract<keyof T, keyof V>>>;
}

function describe(value: unknown): string {
  return typeof value === "string"
    ? `"${value}"`
    : Array.isArray(value)
    ? `[${value.join(", ")}]`
    : String(value);
}

/** What a number option accepts, in words: "an integer >= 1", "a number in (0, 1]". */
export function rangeText(d: Pick<OptionDeclaration, "kind" | "min" | "max" | "above">): string {
  const what = d.kind === "integer" || d.kind === "integers" ? "an integer" : "a number";
  const low = d.above !== undefined ? `(${d.above}` : d.min !== undefined ? `[${d.min}` : undefined;
  if (low !== undefined && d.max !== undefined) return `${what} in ${low}, ${d.max}]`;
  if (d.above !== undefined) return `${what} > ${d.above}`;
  if (d.min !== undefined) return `${what} >= ${d.min}`;
  if (d.max !== undefined) return `${what} <= ${d.max}`;
  return what;
}

function checkNumber(d: OptionDeclaration, value: number, name: string): void {
  const integer = d.kind === "integer" || d.kind === "integers";
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (!integer || Number.isSafeInteger(value)) &&
    (d.min === undefined || value >= d.min) && (d.max === undefined || value <= d.max) &&
    (d.above === undefined || value > d.above);
  if (ok) return;
  const message = `${name} must be ${rangeText(d)}: got ${describe(value)}`;
  throw typeof value === "number" ? new RangeError(message) : new TypeError(message);
}

function checkString(d: OptionDeclaration, value: string, name: string): void {
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be a string: got ${describe(value)}`);
  }
  if (d.choices && !d.choices.includes(value)) {
    throw new RangeError(`${name} must be one of ${d.choices.join(", ")}: got "${value}"`);
  }
}

/**
 * Checks one value against its declaration; `name` is how messages name the option.
 *
 * @throws {TypeError} For a value of the wrong type.
 * @throws {RangeError} For a number out of range or a string not among the choices.
 */
export function checkValue(d: OptionDeclaration, value: unknown, name: string): void {
  switch (d.kind) {
    case "boolean":
      if (typeof value !== "boolean") {
        throw new TypeError(`${name} must be true or false: got ${describe(value)}`);
      }
      return;
    case "number":
    case "integer":
      return checkNumber(d, value as number, name);
    case "string":
      return checkString(d, value as string, name);
  }
  if (!Array.isArray(value)) throw new TypeError(`${name} must be a list: got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`${name} must not be empty`);
  for (const item of value) {
    if (d.kind === "strings") checkString(d, item, name);
    else checkNumber(d, item, name);
  }
}

/** How messages name an option: by library key or by command-line flag. */
export type OptionNaming = "key" | "flag";

function nameOf(key: string, d: OptionDeclaration, naming: OptionNaming): string {
  return naming === "flag" ? `--${d.flag}` : key;
}

/**
 * Refuses two given options of one `exclusive` group.
 *
 * @throws {TypeError} `Give one of a, b, c: got a and b`.
 */
function checkExclusive(
  declarations: OptionDeclarations,
  given: Record<string, unknown>,
  naming: OptionNaming,
): void {
  const groups = new Map<string, string[]>();
  for (const [key, d] of Object.entries(declarations)) {
    if (d.exclusive !== undefined) {
      groups.set(d.exclusive, [...groups.get(d.exclusive) ?? [], key]);
    }
  }
  for (const keys of groups.values()) {
    const present = keys.filter((k) => given[k] !== undefined);
    if (present.length < 2) continue;
    const name = (k: string) => nameOf(k, declarations[k], naming);
    throw new TypeError(
      `Give one of ${keys.map(name).join(", ")}: got ${present.map(name).join(" and ")}`,
    );
  }
}

/**
 * The library side of a declaration set: `given` with every absent declared option set to its
 * default, every present one checked. Fields of `given` that are not declared pass through.
 *
 * @throws {TypeError | RangeError} Naming the first bad option and its value.
 */
export function resolveOptions<const T extends OptionDeclarations, G extends object>(
  declarations: T,
  given: G,
  naming: OptionNaming = "key",
): Omit<G, keyof T> & ResolvedOptions<T> {
  const out: Record<string, unknown> = { ...given as Record<string, unknown> };
  checkExclusive(declarations, out, naming);
  // A group member that is given replaces the others: their defaults stay out.
  const chosen = new Set(
    Object.entries(declarations)
      .filter(([key, d]) => d.exclusive !== undefined && out[key] !== undefined)
      .map(([, d]) => d.exclusive),
  );
  for (const [key, d] of Object.entries(declarations)) {
    const byDefault = d.exclusive !== undefined && chosen.has(d.exclusive) ? undefined : d.default;
    const value = out[key] ?? byDefault;
    if (value === undefined) {
      if (d.required) throw new TypeError(`${nameOf(key, d, naming)} is required`);
      continue;
    }
    checkValue(d, value, nameOf(key, d, naming));
    out[key] = Array.isArray(value) ? [...value] : value;
  }
  return out as Omit<G, keyof T> & ResolvedOptions<T>;
}

/** What {@linkcode parseCommandLine} returns. */
export interface ParsedCommandLine<T extends OptionDeclarations> {
  /**
   * The given options, converted and checked, keyed by library name (defaults not filled, and
   * required ones not yet checked: `resolveOptions(…, "flag")` does both).
   */
  values: Partial<OptionValues<T>>;
  /** Arguments that are not options. */
  positionals: string[];
  /** `--help` / `-h` was given. */
  help: boolean;
  /** One line per deprecated flag used. */
  warnings: string[];
}

/** Converts one command-line string to the declaration's kind. */
function fromText(d: OptionDeclaration, text: string, name: string): OptionValue {
  const one = (part: string): number => {
    const n = Number(part);
    if (part.trim() === "" || !Number.isFinite(n)) {
      throw new TypeError(`${name} must be ${listOf(d)}: got "${text}"`);
    }
    return n;
  };
  switch (d.kind) {
    case "number":
    case "integer":
      return one(text);
    case "numbers":
    case "integers":
      return text.split(",").map((p) => one(p.trim()));
    case "strings":
      return text.split(",").map((p) => p.trim()).filter((p) => p !== "");
    default:
      return text;
  }
}

function listOf(d: OptionDeclaration): string {
  switch (d.kind) {
    case "number":
      return "a number";
    case "integer":
      return "an integer";
    case "numbers":
      return "a comma-separated list of numbers";
    case "integers":
      return "a comma-separated list of integers";
    default:
      return "a value";
  }
}

/**
 * Parses a task's arguments against its declarations (strict: an unknown flag is an error).
 * Values come back converted and checked, named by flag in messages; deprecated aliases are
 * accepted and reported in `warnings`. Defaults are not filled in: the library does that.
 *
 * @throws {TypeError | RangeError} For an unknown flag, a missing value or a bad one.
 */
export function parseCommandLine<const T extends OptionDeclarations>(
  declarations: T,
  args: readonly string[],
  options: { positionals?: boolean } = {},
): ParsedCommandLine<T> {
  type Spec = { type: "string" | "boolean"; short?: string; multiple?: boolean };
  const spec: Record<string, Spec> = { help: { type: "boolean", short: "h" } };
  const byFlag = new Map<string, [string, OptionDeclaration]>();
  for (const [key, d] of Object.entries(declarations)) {
    const type = d.kind === "boolean" ? "boolean" : "string";
    for (const flag of [d.flag, ...(d.aliases ?? [])]) {
      spec[flag] = { type };
      if (flag === d.flag && d.short) spec[flag].short = d.short;
      if (d.repeatable) spec[flag].multiple = true;
      byFlag.set(flag, [key, d]);
    }
  }
  const parsed = parseArgs({
    args: [...args],
    options: spec,
    strict: true,
    allowPositionals: options.positionals ?? false,
  });
  const values: Record<string, unknown> = {};
  const warnings: string[] = [];
  for (const [flag, raw] of Object.entries(parsed.values)) {
    if (flag === "help") continue;
    const [key, d] = byFlag.get(flag)!;
    if (d.deprecated !== undefined) {
      warnings.push(`--${flag} is deprecated and will be removed: ${d.deprecated}`);
    }
    if (flag !== d.flag) {
      warnings.push(`--${flag} is deprecated and will be removed: use --${d.flag}`);
    }
    // The new spelling and an old one together would leave one of them ignored.
    if (values[key] !== undefined) throw new TypeError(`Give --${d.flag} once`);
    const value = typeof raw === "string" ? fromText(d, raw, `--${d.flag}`) : raw;
    // (A repeatable option arrives as the list of its occurrences, each item as given.)
    checkValue(d, value, `--${d.flag}`);
    values[key] = value;
  }
  checkExclusive(declarations, values, "flag");
  return {
    values: values as Partial<OptionValues<T>>,
    positionals: parsed.positionals,
    help: parsed.values.help === true,
    warnings,
  };
}

/** The placeholder of a declaration's value in usage text. */
export function optionArg(d: OptionDeclaration): string {
  if (d.kind === "boolean") return "";
  if (d.arg) return d.arg;
  if (d.choices && d.kind === "string") return d.choices.join("|");
  return { number: "X", integer: "N", numbers: "LIST", integers: "LIST", strings: "LIST" }[
    d.kind as "number"
  ] ?? "S";
}

/** The default of a declaration in words, or undefined when there is none. */
export function defaultText(d: OptionDeclaration): string | undefined {
  if (d.defaultText !== undefined) return d.defaultText;
  // A flag is off unless given: saying so adds nothing.
  if (d.default === undefined || d.default === false) return undefined;
  return Array.isArray(d.default) ? d.default.join(",") : String(d.default);
}

/** The help text of a declaration with its choices and default. */
export function optionHelpText(d: OptionDeclaration): string {
  if (d.deprecated !== undefined) return `deprecated: ${d.deprecated}`;
  const choices = d.choices && d.kind !== "string" ? ` (${d.choices.join(", ")})` : "";
  const byDefault = defaultText(d);
  return d.help + choices + (byDefault !== undefined ? ` (default ${byDefault})` : "") +
    (d.required ? " (required)" : "");
}

/** One aligned usage line per option: `  --flag ARG   help (default …)`. */
export function usageLines(declarations: OptionDeclarations): string[] {
  const entries = Object.values(declarations).map((d) => {
    const arg = optionArg(d);
    const short = d.short ? `-${d.short}, ` : "";
    return [`${short}--${d.flag}${arg ? ` ${arg}` : ""}`, optionHelpText(d)] as const;
  });
  const width = Math.min(32, Math.max(0, ...entries.map(([f]) => f.length)) + 2);
  return entries.map(([flag, help]) =>
    flag.length + 2 > width
      ? `  ${flag}\n  ${" ".repeat(width)}${help}`
      : `  ${flag.padEnd(width)}${help}`
  );
}

/** Text for a Markdown table cell: pipes escaped, `<…>` kept from turning into HTML. */
export function markdownCell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Markdown table of declarations: option, value, default, meaning. */
export function optionsMarkdown(declarations: OptionDeclarations): string {
  const rows = Object.values(declarations).map((d) => {
    const value = d.kind === "boolean" ? "flag" : d.choices ? d.choices.join(" | ") : optionArg(d);
    const aliases = d.aliases?.length
      ? ` (was ${d.aliases.map((a) => `\`--${a}\``).join(", ")})`
      : "";
    const help = d.deprecated !== undefined ? `deprecated: ${d.deprecated}` : d.help;
    const byDefault = defaultText(d) ?? (d.required ? "required" : "—");
    return `| \`--${d.flag}\`${aliases} | ${markdownCell(value)} | ${markdownCell(byDefault)} | ` +
      `${markdownCell(help)} |`;
  });
  return ["| option | value | default | meaning |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}
