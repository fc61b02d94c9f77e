"""The reference for `consentric recommend evaluate --reference PYTHON`.

Reads the training split that Consentric wrote (tab-separated user index, item index,
strength), trains `implicit`'s ALS with the parameters given, and prints JSON: the top-k list
of every user asked for, and the seconds each iteration took. Consentric scores both models'
lists with its own metrics, so the comparison is of the models alone.
"""
import json
import os
import sys
import time

# implicit's own advice: one BLAS thread, its own thread pool over the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402


def main():
    args = json.loads(sys.argv[1])
    rows, cols, vals = [], [], []
    with open(args["train"]) as f:
        for line in f:
            u, i, w = line.split("\t")
            rows.append(int(u))
            cols.append(int(i))
            vals.append(float(w))
    shape = (args["users"], args["items"])
    user_items = sp.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=shape)
    user_items.sum_duplicates()
    times = []
    model = AlternatingLeastSquares(
        factors=args["factors"],
        regularization=args["regularization"],
        alpha=args["alpha"],
        iterations=args["iterations"],
        random_state=args["seed"],
        calculate_training_loss=False,
    )
    model.cg_steps = args["cg_steps"]
    start = time.perf_counter()
    model.fit(user_items, show_progress=False, callback=lambda it, secs, loss: times.append(secs))
    total = time.perf_counter() - start
    users = np.array(args["users_to_rank"], dtype=np.int32)
    ids, _ = model.recommend(users, user_items[users], N=args["k"], filter_already_liked_items=True)
    print(json.dumps({
        "iteration_seconds": times,
        "fit_seconds": total,
        "lists": {str(int(u)): [int(i) for i in row if i >= 0] for u, row in zip(users, ids)},
    }))


if __name__ == "__main__":
    main()
