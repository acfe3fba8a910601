/**
 * Test helper: a validator for the subset of JSON Schema that `k8s.schema.json` uses — `type`,
 * `properties`, `required`, `additionalProperties`, `items`, `minItems`, `enum`, `const`,
 * `pattern`, `minLength`, `minimum` and local `$ref`s — returning every problem with its path.
 */

/** A schema node of the subset. */
export interface Schema {
  $ref?: string;
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  minimum?: number;
}

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/**
 * The problems of `value` against `schema` (empty when it is valid); `root` resolves `$ref`s
 * of the form `#/definitions/<name>`.
 */
export function validate(
  value: unknown,
  schema: Schema,
  root: { definitions?: Record<string, Schema> },
  path = "$",
): string[] {
  if (schema.$ref) {
    const name = schema.$ref.replace(/^#\/definitions\//, "");
    const target = root.definitions?.[name];
    if (!target) return [`${path}: unknown $ref ${schema.$ref}`];
    return validate(value, target, root, path);
  }
  const problems: string[] = [];
  const type = typeOf(value);
  if (schema.type && !(type === schema.type || (schema.type === "number" && type === "integer"))) {
    return [`${path}: must be ${schema.type}, got ${type} ${JSON.stringify(value)}`];
  }
  if ("const" in schema && value !== schema.const) {
    problems.push(`${path}: must be ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  }
  if (schema.enum && !schema.enum.includes(value)) {
    problems.push(
      `${path}: must be one of ${schema.enum.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  if (typeof value === "string") {
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) {
      problems.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    }
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      problems.push(`${path}: shorter than ${schema.minLength}`);
    }
  }
  if (typeof value === "number" && schema.minimum !== undefined && value < schema.minimum) {
    problems.push(`${path}: ${value} is below ${schema.minimum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      problems.push(`${path}: fewer than ${schema.minItems} items`);
    }
    if (schema.items) {
      value.forEach((item, i) =>
        problems.push(...validate(item, schema.items!, root, `${path}[${i}]`))
      );
    }
  }
  if (type === "object") {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in object)) problems.push(`${path}: missing required field "${key}"`);
    }
    for (const [key, item] of Object.entries(object)) {
      const known = schema.properties?.[key];
      const extra = schema.additionalProperties;
      if (known) problems.push(...validate(item, known, root, `${path}.${key}`));
      else if (extra === false) problems.push(`${path}: unknown field "${key}"`);
      else if (typeof extra === "object") {
        problems.push(...validate(item, extra, root, `${path}.${key}`));
      }
    }
  }
  return problems;
}
