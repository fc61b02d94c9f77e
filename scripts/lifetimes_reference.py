"""The reference for `consentric bench lifecycle`: fits BG/NBD and Gamma-Gamma with the Python
`lifetimes` package on a summary CSV written by the bench (columns x, t_x, T, monetary) and
prints the median fit times and the parameters as JSON.

Usage: python lifetimes_reference.py SUMMARY.csv RUNS
Run it with the interpreter that scripts/lifetimes-venv.sh prints.
"""
import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: E402


def timed(fit, runs):
    times, model = [], None
    for _ in range(runs):
        started = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - started)
    return statistics.median(times), model


def main():
    path, runs = sys.argv[1], int(sys.argv[2])
    df = pd.read_csv(path)
    bg_s, bg = timed(lambda: BetaGeoFitter().fit(df["x"], df["t_x"], df["T"]), runs)
    buyers = df[(df["x"] > 0) & (df["monetary"] > 0)]
    gg_s, gg = timed(lambda: GammaGammaFitter().fit(buyers["x"], buyers["monetary"]), runs)
    print(json.dumps({
        "bg_nbd": {"seconds": bg_s, "params": {k: float(v) for k, v in bg.params_.items()}},
        "gamma_gamma": {"seconds": gg_s, "params": {
            "p": float(gg.params_["p"]), "q": float(gg.params_["q"]),
            "gamma": float(gg.params_["v"])}},
        "customers": len(df),
        "lifetimes": __import__("lifetimes").__version__,
    }))


if __name__ == "__main__":
    main()
