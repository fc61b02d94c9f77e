#!/usr/bin/env python3
"""Where a SQLite store's commits write: WAL frames per commit, by table or index.

Every page a commit changes is one WAL frame (two `pwrite`s and a checksum), so frames per
commit are what the serial writer pays for most of its commit. Run it on a copy of a store
stopped mid-ingest, before a checkpoint empties its WAL:

    d=$(mktemp -d); TMPDIR=$d CONSENTRIC_LOG=warn \\
      ./target/release/consentric-bench ingest --skip-import --connections 1 & pid=$!
    sleep 12; kill -STOP $pid
    s=$(ls -td $d/.tmp*/ | head -1); cp -r "$s" $d/copy; kill -KILL $pid
    python3 scripts/wal-frames.py $d/copy; rm -rf $d

(The newest store is the phase running when stopped: at 12 s, on this machine, the
one-producer phase, whose commits hold one batch of 100 events each.) Opening the copy
replays its WAL into it and removes the WAL on closing, which is why this reads the WAL
first, and why a copy can be read only once. Needs a Python whose SQLite has the `dbstat`
table (SQLITE_ENABLE_DBSTAT_VTAB, as Debian's and Ubuntu's do). Frame checksums are not
verified: a copy of a stopped process's files holds only complete writes.

With `--time-checkpoint` it then times what an erasure ends with, a TRUNCATE checkpoint of
the copy's whole log. To catch a log of a given size, poll it before stopping, for example
`until [ $(stat -c %s "$(ls -td $d/.tmp*/ | head -1)consentric.db-wal") -ge 262144000 ]; do
sleep 0.02; done` instead of `sleep 12` (with `--events 400000`, so that the one-producer phase
lasts until the log holds 64k pages).
"""

import collections
import sqlite3
import struct
import sys
import time

WAL_HEADER = 32
FRAME_HEADER = 24


def commits_in(wal: bytes) -> list[list[int]]:
    """The page numbers each complete commit in `wal` wrote, oldest first."""
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(
        ">8I", wal[:WAL_HEADER]
    )
    commits, current, offset = [], [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal):
        page, size_after_commit, s1, s2, _k1, _k2 = struct.unpack(
            ">6I", wal[offset : offset + FRAME_HEADER]
        )
        if (s1, s2) != (salt1, salt2):
            break  # frames of an earlier pass through the file
        current.append(page)
        if size_after_commit:
            commits.append(current)
            current = []
        offset += FRAME_HEADER + page_size
    return commits


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--time-checkpoint"]
    store = args[0] if args else "consentric-data"
    with open(f"{store}/consentric.db-wal", "rb") as f:
        wal = f.read()
    commits = commits_in(wal)
    # The first commit may be a fresh store's schema, unlike the rest: leave it out.
    commits = commits[1:]
    if not commits:
        sys.exit("no complete commits in the WAL (was it checkpointed?)")
    db = sqlite3.connect(f"{store}/consentric.db")
    owner = {page: name for name, page in db.execute("SELECT name, pageno FROM dbstat")}
    per_table = collections.Counter(owner.get(p, "?") for c in commits for p in c)
    print(f"{len(commits)} commits; WAL frames per commit:")
    for name, frames in per_table.most_common():
        print(f"{frames / len(commits):8.1f}  {name}")
    print(f"{sum(per_table.values()) / len(commits):8.1f}  total")
    if "--time-checkpoint" in sys.argv:
        # What an erasure ends with: the whole log copied back, the file truncated.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        started = time.perf_counter()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        took = time.perf_counter() - started
        print(f"TRUNCATE checkpoint of {len(wal) / 2**20:.0f} MiB of WAL: {took * 1000:.0f} ms")


if __name__ == "__main__":
    main()
