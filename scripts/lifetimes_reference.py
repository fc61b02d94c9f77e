"""The reference for `consentric-bench lifecycle`: fits BG/NBD and Gamma-Gamma with the Python
`lifetimes` package on a summary CSV written by the bench (columns x, t_x, T, monetary) and
prints the median fit times and the parameters as JSON.

Usage: python lifetimes_reference.py SUMMARY.csv RUNS
       python lifetimes_reference.py holdout HOLDOUT.csv WEEKS
The second form fits BG/NBD and Pareto/NBD on a calibration summary (columns x, t_x, T,
holdout) and prints the total purchases each predicts for the WEEKS after, and the actual total.
Run it with the interpreter that scripts/lifetimes-venv.sh prints.
"""
import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter  # noqa: E402


def timed(fit, runs):
    times, model = [], None
    for _ in range(runs):
        started = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - started)
    return statistics.median(times), model


def holdout(path, weeks):
    df = pd.read_csv(path)
    totals = {}
    for name, fitter in (("bg_nbd", BetaGeoFitter()), ("pareto_nbd", ParetoNBDFitter())):
        model = fitter.fit(df["x"], df["t_x"], df["T"])
        totals[name] = float(model.conditional_expected_number_of_purchases_up_to_time(
            weeks, df["x"], df["t_x"], df["T"]).sum())
    totals["actual"] = float(df["holdout"].sum())
    print(json.dumps(totals))


def main():
    if sys.argv[1] == "holdout":
        holdout(sys.argv[2], float(sys.argv[3]))
        return
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
