#!/usr/bin/env bash
# A throwaway PostgreSQL cluster from the machine's initdb/pg_ctl, for tests and benchmarks.
#
#   scripts/pg-throwaway.sh start DIR   # prints a connection string (without dbname)
#   scripts/pg-throwaway.sh stop DIR
#
# Tests run it with fsync off (speed, nothing to keep); benchmarks set PG_DURABLE=1 to keep
# PostgreSQL's default durability (fsync, synchronous_commit, full_page_writes), and
# PG_STATEMENTS=1 to load pg_stat_statements (statements counted per event).
#
# PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` user.
set -euo pipefail

cmd=${1:?usage: pg-throwaway.sh start|stop DIR}
dir=${2:?usage: pg-throwaway.sh start|stop DIR}

bindir=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v initdb)")
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-throwaway: no initdb/pg_ctl found (install postgresql)" >&2
  exit 1
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bindir/initdb" -U postgres --auth=trust --no-sync -E UTF8 -D "$dir/data" >"$dir/initdb.log" 2>&1
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300"
    if [ "${PG_STATEMENTS:-0}" = 1 ]; then
      opts="$opts -c shared_preload_libraries=pg_stat_statements"
    fi
    if [ "${PG_DURABLE:-0}" != 1 ]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$opts" start >/dev/null
    echo "host=127.0.0.1 port=$port user=postgres"
    ;;
  stop)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-throwaway.sh start|stop DIR" >&2
    exit 2
    ;;
esac
