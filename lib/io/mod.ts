/**
 * Files and pictures: NumPy `.npy`/`.npz`, PNG images and grids, plots, GIFs, grid files,
 * teacher datasets, MNIST, atomic writes, output locks and progress bars. Builds on the math core
 * only.
 *
 * @module
 */
export * from "./atomic.ts";
export * from "./fs.ts";
export * from "./npy.ts";
export * from "./npz.ts";
export * from "./image.ts";
export * from "./plot.ts";
export * from "./animation.ts";
export * from "./progress.ts";
export * from "./grid_file.ts";
export * from "./dataset.ts";
export * from "./lock.ts";
