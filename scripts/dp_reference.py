"""The reference for `consentric-bench analytics --reference PYTHON`.

Releases the same exact values Consentric releases (a count and a clamped sum, whose exact
values Consentric passes in) with diffprivlib's Laplace mechanism at the same epsilon and
sensitivity, `releases` times, and prints the mean absolute error of each as JSON.
"""
import json
import sys

from diffprivlib.mechanisms import Laplace


def main():
    args = json.loads(sys.argv[1])
    out = {}
    for item in args["items"]:
        mech = Laplace(epsilon=item["epsilon"], sensitivity=item["sensitivity"])
        exact = item["exact"]
        total = 0.0
        for _ in range(args["releases"]):
            total += abs(mech.randomise(exact) - exact)
        out[item["name"]] = total / args["releases"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
