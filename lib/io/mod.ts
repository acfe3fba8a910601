/**
 * Files and pictures: NumPy `.npy`/`.npz`, PNG images and labelled grids, charts (SVG and
 * PNG), GIFs, HTML reports, grid files, teacher datasets, MNIST, atomic writes, output
 * locks, progress bars, and files given by URL (downloaded once into a cache). Builds on the math core only.
 *
 * @module
 */
export * from "./atomic.ts";
export * from "./fs.ts";
export * from "./npy.ts";
export * from "./npz.ts";
export * from "./image.ts";
export * from "./svg.ts";
export * from "./html.ts";
export * from "./plot.ts";
export * from "./labelled_grid.ts";
export * from "./animation.ts";
export * from "./progress.ts";
export * from "./grid_file.ts";
export * from "./dataset.ts";
export * from "./remote.ts";
export * from "./lock.ts";
export * from "./shard_record.ts";
export type { PlotModule } from "../deps.ts";
