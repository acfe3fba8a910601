/**
 * Losses and metrics: the LD3 losses (L2, L1, LPIPS), distances to a teacher, FID with its
 * feature models, and the dense linear algebra FID needs.
 *
 * @module
 */
export * from "./losses.ts";
export * from "./lpips.ts";
export * from "./distance.ts";
export * from "./features.ts";
export * from "./fid.ts";
export * from "./fid_moments.ts";
