/**
 * An LD3 training run on disk, behind `deno task train`: the run folder, its checkpoints, the
 * learned `grid.json`, reports and pictures, and training many grids at once.
 *
 * @module
 */
export * from "./run.ts";
export * from "./checkpoint.ts";
export * from "./grid_set.ts";
export * from "./report.ts";
export * from "./html_report.ts";
