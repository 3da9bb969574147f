#!/usr/bin/env bash
# The data check's benchmark: the digest `--verify-data` takes, of a PostgreSQL database of
# over 1 GB on this machine, next to the scan floor (a bare `SELECT count(*)` of the same
# tables) and `pg_dump` of it (what a check by dump and diff would pay at least).
#
#   bench/digest.sh [SCALE]      # pgbench scale, 80 by default: about 1.2 GB; RUNS=3
#
# Needs PostgreSQL 15's server and tools (/usr/lib/postgresql/15/bin). Starts its own server
# on a free port in a temporary folder and removes both when done.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-80}
runs=${RUNS:-3}
bin=/usr/lib/postgresql/15/bin
[[ -x $bin/postgres ]] || { echo "PostgreSQL 15 not found in $bin: apt-get install postgresql-15" >&2; exit 1; }

cargo build --quiet --release -p rds-handoff-datacheck --example digest
digest=$PWD/target/release/examples/digest

work=$(mktemp -d /tmp/rh-digest-bench.XXXXXX)
chmod 755 "$work"
as_owner=()
if [[ $(id -u) == 0 ]]; then
  chown postgres "$work"
  as_owner=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_owner[@]}" "$bin/initdb" -D "$work/data" -U bench --auth-local=trust \
  --auth-host=scram-sha-256 --no-sync >/dev/null
"${as_owner[@]}" "$bin/postgres" -D "$work/data" -p "$port" -k "$work" -c listen_addresses=127.0.0.1 \
  -c fsync=off -c synchronous_commit=off -c shared_buffers=256MB >"$work/server.log" 2>&1 &
server=$!
stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" stop -m fast >/dev/null 2>&1 || kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap stop EXIT
until "$bin/pg_isready" -q -h "$work" -p "$port"; do sleep 0.2; done

sql() { "$bin/psql" -X -q -A -t -h "$work" -p "$port" -U bench "$@"; }
# A password of the benchmark's own, never printed; psql reads it on stdin, not in argv.
password=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
sql -d postgres <<<"ALTER ROLE bench PASSWORD '$password';"
sql -d postgres -c 'CREATE DATABASE bench'
echo "loading pgbench scale $scale…" >&2
"$bin/pgbench" -i -q -s "$scale" -h "$work" -p "$port" -U bench bench >/dev/null 2>&1
sql -d bench -c 'VACUUM ANALYZE' >/dev/null
size=$(sql -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
heap=$(sql -d bench -c "SELECT pg_size_pretty(sum(pg_relation_size(oid))) FROM pg_class WHERE relname LIKE 'pgbench_%' AND relkind = 'r'")
rows=$(sql -d bench -c "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM pgbench_branches) + (SELECT count(*) FROM pgbench_tellers) + (SELECT count(*) FROM pgbench_history)")

count_all() {
  sql -d bench -c 'SELECT count(*) FROM pgbench_accounts' -c 'SELECT count(*) FROM pgbench_branches' \
    -c 'SELECT count(*) FROM pgbench_tellers' -c 'SELECT count(*) FROM pgbench_history' >/dev/null
}
digest_all() {
  DATACHECK_PASSWORD=$password DATACHECK_ALLOW_PLAINTEXT=1 \
    "$digest" postgres 127.0.0.1 "$port" bench bench >/dev/null 2>&1
}
dump_all() { "$bin/pg_dump" -h "$work" -p "$port" -U bench bench >/dev/null; }

# min / median / max seconds of `runs` runs of a command.
measure() {
  local times=() start
  for _ in $(seq "$runs"); do
    start=$(date +%s.%N)
    "$@"
    times+=("$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{t[NR]=$1} END {printf "%.2f / %.2f / %.2f s", t[1], t[int((NR+1)/2)], t[NR]}'
}

count_all # warm the cache once, so every measure reads from memory alike
echo "database: $size ($heap of table data, $rows rows, 4 tables); $runs runs each, min / median / max"
echo "  SELECT count(*), every table:  $(measure count_all)"
echo "  digest (rds-handoff):          $(measure digest_all)"
echo "  pg_dump to /dev/null:          $(measure dump_all)"
