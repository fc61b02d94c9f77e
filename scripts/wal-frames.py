#!/usr/bin/env python3
"""Where a SQLite store's commits write: WAL frames per commit, by table or index.

Every page a commit changes is one WAL frame (two `pwrite`s and a checksum), so frames per
commit are what the serial writer pays for most of its commit. Run it on a copy of a store
stopped mid-ingest, before a checkpoint empties its WAL:

    d=$(mktemp -d); TMPDIR=$d CONSENTRIC_LOG=warn \\
      ./target/release/consentric bench ingest --skip-import --connections 1 & pid=$!
    sleep 12; kill -STOP $pid
    s=$(ls -td $d/.tmp*/ | head -1); cp -r "$s" /tmp/store-copy; kill -KILL $pid
    python3 scripts/wal-frames.py /tmp/store-copy

(The newest store is the phase running when stopped: at 12 s, on this machine, the
one-producer phase, whose commits hold one batch of 100 events each.) Opening the copy
replays its WAL into it, which is why this reads the WAL first and the copy afterwards.
"""

import collections
import sqlite3
import struct
import sys

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
    store = sys.argv[1] if len(sys.argv) > 1 else "consentric-data"
    with open(f"{store}/consentric.db-wal", "rb") as f:
        commits = commits_in(f.read())
    # The first and last commits may be a migration or cut short: leave them out.
    commits = commits[1:-1]
    if not commits:
        sys.exit("no complete commits in the WAL (was it checkpointed?)")
    db = sqlite3.connect(f"{store}/consentric.db")
    owner = {page: name for name, page in db.execute("SELECT name, pageno FROM dbstat")}
    per_table = collections.Counter(owner.get(p, "?") for c in commits for p in c)
    print(f"{len(commits)} commits; WAL frames per commit:")
    for name, frames in per_table.most_common():
        print(f"{frames / len(commits):8.1f}  {name}")
    print(f"{sum(per_table.values()) / len(commits):8.1f}  total")


if __name__ == "__main__":
    main()
