#!/usr/bin/env python3
"""Writes small data sets in the layouts the ANN benchmarking tools publish, with the writers
those tools use, for the tests of the streaming readers (src/workload/dataset/files):

  OUT/ann-angular.hdf5      ann-benchmarks layout (h5py): attrs distance/dimension/type/
                            point_type, datasets train, test, neighbors (int32), distances
                            (float32), contiguous as ann-benchmarks writes them
  OUT/ann-euclidean.hdf5    the same with euclidean ground truth and train stored chunked + gzip
  OUT/vdbb/                 VectorDBBench layout (pyarrow): train.parquet (id int64, emb
                            list<float32>, several row groups, snappy), test.parquet,
                            neighbors.parquet (id = query id, neighbors_id list<int64>)
  OUT/vdbb-parts/           the training vectors as shuffle_train-NN-of-03.parquet parts
                            (shuffled rows, float64 emb, gzip)
  OUT/vdbb-zstd/            a zstd-compressed train.parquet (not supported: must fail clearly)
  OUT/train.npy, test.npy   numpy's own .npy files of the same vectors (float32, C order)
  OUT/train-f64-fortran.npy float64, column-major
  OUT/expected.json         what a reader must find: shapes, ids, per-row sums, and the
                            brute-force ground truth (positions and VectorDBBench ids)

Usage: make-ann-fixtures.py OUT_DIR   (needs numpy, h5py, pyarrow:
`source scripts/deps && plt_install_deps` makes a venv with them)
"""

import json
import os
import sys

try:
    import h5py
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError as err:
    sys.exit(f"{err}: run `source scripts/deps && plt_install_deps` for a venv with numpy, h5py, pyarrow")

TRAIN, QUERIES, DIM, K = 2000, 40, 24, 10


def brute_force(train, test, distance):
    """Positions of each query's K nearest training vectors, nearest first."""
    if distance == "angular":
        t = train / np.linalg.norm(train, axis=1, keepdims=True)
        q = test / np.linalg.norm(test, axis=1, keepdims=True)
        d = 1.0 - q.astype(np.float64) @ t.astype(np.float64).T
    else:
        d = (
            (test.astype(np.float64) ** 2).sum(1)[:, None]
            - 2.0 * test.astype(np.float64) @ train.astype(np.float64).T
            + (train.astype(np.float64) ** 2).sum(1)[None, :]
        )
    order = np.argsort(d, axis=1, kind="stable")[:, :K]
    return order.astype(np.int32), np.take_along_axis(d, order, axis=1).astype(np.float32)


def write_ann(path, train, test, distance, chunked):
    """One ann-benchmarks file, laid out as its write_output does."""
    neighbors, distances = brute_force(train, test, distance)
    with h5py.File(path, "w") as f:
        f.attrs["type"] = "dense"
        f.attrs["distance"] = distance
        f.attrs["dimension"] = train.shape[1]
        f.attrs["point_type"] = "float"
        options = {"chunks": (256, train.shape[1]), "compression": "gzip"} if chunked else {}
        f.create_dataset("train", train.shape, dtype=train.dtype, **options)[:] = train
        f.create_dataset("test", test.shape, dtype=test.dtype)[:] = test
        f.create_dataset("neighbors", neighbors.shape, dtype="i4")[:] = neighbors
        f.create_dataset("distances", distances.shape, dtype="f4")[:] = distances
    return neighbors


def emb_table(ids, vectors, value_type):
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "emb": pa.array([list(map(float, v)) for v in vectors], pa.list_(value_type)),
        }
    )


def write_vdbb(out, train, test, train_ids, query_ids, truth):
    """A VectorDBBench directory with one training file, and one with three shuffled parts."""
    one = os.path.join(out, "vdbb")
    os.makedirs(one, exist_ok=True)
    pq.write_table(emb_table(train_ids, train, pa.float32()), os.path.join(one, "train.parquet"), row_group_size=700)
    pq.write_table(emb_table(query_ids, test, pa.float32()), os.path.join(one, "test.parquet"))
    # Neighbour rows in reverse query order: readers must match them by query id.
    order = list(reversed(range(len(query_ids))))
    neighbors = pa.table(
        {
            "id": pa.array([int(query_ids[i]) for i in order], pa.int64()),
            "neighbors_id": pa.array([[int(x) for x in truth[i]] for i in order], pa.list_(pa.int64())),
        }
    )
    for d in (one, os.path.join(out, "vdbb-parts")):
        os.makedirs(d, exist_ok=True)
        pq.write_table(neighbors, os.path.join(d, "neighbors.parquet"))
    parts = os.path.join(out, "vdbb-parts")
    pq.write_table(emb_table(query_ids, test, pa.float32()), os.path.join(parts, "test.parquet"))
    shuffled = np.random.default_rng(7).permutation(len(train))
    for p, rows in enumerate(np.array_split(shuffled, 3)):
        table = emb_table(train_ids[rows], train[rows].astype(np.float64), pa.float64())
        pq.write_table(table, os.path.join(parts, f"shuffle_train-{p:02d}-of-03.parquet"), compression="gzip")
    # zstd, which the readers do not build in: they must say so.
    zstd = os.path.join(out, "vdbb-zstd")
    os.makedirs(zstd, exist_ok=True)
    pq.write_table(emb_table(train_ids, train, pa.float32()), os.path.join(zstd, "train.parquet"), compression="zstd")
    return [int(train_ids[i]) for i in shuffled]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(42)
    # Clustered, like real embeddings, so that neighbours are well separated.
    centres = rng.normal(size=(20, DIM))
    train = (centres[rng.integers(0, 20, TRAIN)] + 0.3 * rng.normal(size=(TRAIN, DIM))).astype(np.float32)
    test = (centres[rng.integers(0, 20, QUERIES)] + 0.3 * rng.normal(size=(QUERIES, DIM))).astype(np.float32)
    angular = write_ann(os.path.join(out, "ann-angular.hdf5"), train, test, "angular", False)
    euclidean = write_ann(os.path.join(out, "ann-euclidean.hdf5"), train, test, "euclidean", True)
    np.save(os.path.join(out, "train.npy"), train)
    np.save(os.path.join(out, "test.npy"), test)
    np.save(os.path.join(out, "train-f64-fortran.npy"), np.asfortranarray(train.astype(np.float64)))
    # VectorDBBench ids: 0..N-1 as its published sets have them (the parts shuffle them).
    train_ids = np.arange(TRAIN, dtype=np.int64)
    query_ids = np.arange(QUERIES, dtype=np.int64) + 500
    vdbb_truth = train_ids[euclidean]
    shuffled_ids = write_vdbb(out, train, test, train_ids, query_ids, vdbb_truth)
    expected = {
        "train_rows": TRAIN,
        "queries": QUERIES,
        "dim": DIM,
        "train_row_sums": [float(x) for x in train.astype(np.float64).sum(1)],
        "test_row_sums": [float(x) for x in test.astype(np.float64).sum(1)],
        "angular_neighbors": angular.tolist(),
        "euclidean_neighbors": euclidean.tolist(),
        "train_ids": train_ids.tolist(),
        "shuffled_train_ids": shuffled_ids,
        "vdbb_neighbors": vdbb_truth.tolist(),
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
