"""The references `consentric-bench cleanroom --reference` runs side by side.

Reads one JSON line from stdin: {"n": N, "overlap": K, "seconds": S}. Builds the same
identifiers the bench does (`shopper{i}@example.org`: ours 0..N, theirs N-K..2N-K), runs
OpenMined's PSI (cardinality only, its default Golomb-compressed set at a false-positive rate
of 1e-9) end to end in one process, and times python-paillier (`phe`, with gmpy2) encrypting
2048-bit for S seconds. Prints one JSON line.
"""
import json
import sys
import time

import private_set_intersection.python as psi
from phe import paillier


def main():
    args = json.loads(sys.stdin.readline())
    n, k, seconds = args["n"], args["overlap"], args["seconds"]
    ours = [f"shopper{i}@example.org" for i in range(n)]
    theirs = [f"shopper{i}@example.org" for i in range(n - k, 2 * n - k)]

    t = time.perf_counter()
    client = psi.client.CreateWithNewKey(False)
    server = psi.server.CreateWithNewKey(False)
    setup = server.CreateSetupMessage(1e-9, len(ours), theirs)
    request = client.CreateRequest(ours)
    response = server.ProcessRequest(request)
    size = client.GetIntersectionSize(setup, response)
    psi_seconds = time.perf_counter() - t

    public, _ = paillier.generate_paillier_keypair(n_length=2048)
    done, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        public.encrypt(done * 100)
        done += 1
    rate = done / (time.perf_counter() - t)
    print(json.dumps({"psi_seconds": psi_seconds, "cardinality": size, "encrypt_per_s": rate}))


if __name__ == "__main__":
    main()
