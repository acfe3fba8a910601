/**
 * Fingerprints of resumable work: the JSON record of what a run computes, compared when a
 * checkpoint is picked up again, so that a run never continues another run's state. Equality is
 * on canonical JSON (sorted keys), and a mismatch names the fields that differ.
 *
 * @module
 */

/** The identity of a run: a JSON object whose top-level fields name what matters. */
export type Fingerprint = Record<string, unknown>;

/** JSON with object keys sorted, so equal values give equal strings whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(
          Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
        : v,
  );
}

/**
 * The top-level fingerprint fields in which two fingerprints differ (for the error message).
 *
 * @example
 * ```ts
 * console.log(fingerprintDiff({ seed: 0, n: 10 }, { seed: 1, n: 10 })); // ["seed"]
 * ```
 */
export function fingerprintDiff(a: Fingerprint, b: Fingerprint): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k]));
}
