#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with Schemathesis: a fresh store, the real
# server on a loopback port, an admin key, and requests generated from /openapi.json — valid
# ones, invalid ones, and sequences that follow what earlier answers returned.
#
#   scripts/api-fuzz.sh [--gate] [--postgres CONNINFO] [--scope admin|write|analyst] [BINARY]
#
# Without --gate every check runs, including whether the server accepts exactly what the
# document allows (docs/api-conformance.md lists what it still reports, and why). With --gate
# (what .ci/run uses) every check but those two: no 5xx; every response, errors included,
# matches the document's status codes, content types, headers and schemas; no operation
# ignores its authentication; nothing deleted is still served. BINARY
# defaults to target/release/consentric (built if absent). With --postgres the server stores in a
# scratch database made (and dropped) on that PostgreSQL server with psql; CONNINFO is a libpq
# connection string without a database name, as scripts/pg-throwaway.sh prints. --scope sends
# a key of that scope instead of an admin key (every admin operation must then refuse it as
# documented). API_FUZZ_EXAMPLES (default 30) and API_FUZZ_SEED (default 1) widen or vary the
# search. Schemathesis is installed with pip
# into target/api-fuzz-venv, at the version pinned below.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
gate=false
postgres=
scope=admin
while [ $# -gt 0 ]; do
  case "$1" in
    --gate) gate=true; shift ;;
    --postgres) postgres=$2; shift 2 ;;
    --scope) scope=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ $# -gt 0 ]; then
  bin=$1
  [ -x "$bin" ] || { echo "api-fuzz: no binary at $bin" >&2; exit 2; }
else
  bin=target/release/consentric
  [ -x "$bin" ] || cargo build --release
fi

venv=target/api-fuzz-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

data=$(mktemp -d /tmp/consentric-api-fuzz.XXXXXX)
pid=
database=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$database" ]; then psql "$postgres dbname=postgres" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
# Only the store and settings made here: no database, configuration or data directory from
# the caller's environment or working directory (this fuzzes erasures, too), and JSON logs.
for name in $(env | sed -n 's/^\(CONSENTRIC_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done
export CONSENTRIC_LOG=warn CONSENTRIC_LOG_FORMAT=json
: >"$data/consentric.toml"
if [ -n "$postgres" ]; then
  database=consentric_api_fuzz_$$
  psql "$postgres dbname=postgres" -q -c "CREATE DATABASE $database"
  export CONSENTRIC_DATABASE_URL="$postgres dbname=$database"
fi
run() { "$bin" --config "$data/consentric.toml" --data-dir "$data" "$@"; }

admin=$(run keys create --scope admin | head -n 1)
key=$admin
[ "$scope" = admin ] || key=$(run keys create --scope "$scope" | head -n 1)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The binary itself in the background (not through `run`), so that $! is the server's pid.
"$bin" --config "$data/consentric.toml" --data-dir "$data" serve --listen "127.0.0.1:$port" \
  >"$data/serve.log" 2>&1 &
pid=$!
up=false
for _ in $(seq 100); do
  if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=true; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if ! $up; then
  echo "api-fuzz: the server did not start:" >&2
  cat "$data/serve.log" >&2
  exit 1
fi

# A customer under the ids the fuzzer tries first, so that the profile, consent, lifecycle and
# decision operations answer more than 404 (the fuzzer may then erase them, too).
for id in 0 a; do
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/v1/batch" \
    -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d '{"batch": [
      {"type": "identify", "userId": "'"$id"'", "anonymousId": "anon-'"$id"'", "traits": {"email": "'"$id"'@example.com", "name": "Fuzz"}},
      {"type": "track", "userId": "'"$id"'", "event": "Order Completed", "properties": {"order_id": "o-'"$id"'", "revenue": 12.5, "products": [{"product_id": "p1", "price": 12.5}]}},
      {"type": "page", "userId": "'"$id"'", "name": "Home"}]}'
done

# A joined clean-room session's run calls the host the session names; generated hosts do not
# answer, and its 502 says so. It is left out so that the fuzzer sends nothing off this machine.
excluded=(--exclude-path "/v1/cleanroom/joined/{id}/run")
if $gate; then
  excluded+=(--exclude-checks negative_data_rejection,positive_data_acceptance)
fi
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all "${excluded[@]}" --max-examples "${API_FUZZ_EXAMPLES:-30}" --seed "${API_FUZZ_SEED:-1}" --no-color || status=$?
# An error the server logged fails the run even if every answer was right (a timer's work,
# say, runs beside the requests).
if grep -q '"level":"ERROR"' "$data/serve.log"; then
  echo "api-fuzz: the server logged errors:" >&2
  grep '"level":"ERROR"' "$data/serve.log" | tail -n 5 >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
