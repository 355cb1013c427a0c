#!/usr/bin/env bash
# The tmf commit benchmark's workload on PostgreSQL 15, for comparison:
# transactions of 5 upserts of 100-byte values over 1,000,000 keys,
# synchronous_commit on, with 1, 4 and 16 clients (pgbench). Runs a private
# server as the postgres user in a temporary folder, started and stopped by
# pid. Prints one JSON line.
#   bench/pg_commit.sh [SECONDS] [CLIENTS...]
set -euo pipefail
SECONDS_EACH=${1:-10}; shift || true
CLIENTS=("$@"); [ ${#CLIENTS[@]} -gt 0 ] || CLIENTS=(1 4 16)
PORT=54329

if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "install ok installed"; then
  # Install without starting the packaged service.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
PGBIN=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/rdf-pgbench.XXXXXX)
chown postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
cleanup() {
  if [ -f "$work/data/postmaster.pid" ]; then
    pid=$(head -1 "$work/data/postmaster.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
as_pg $PGBIN/initdb -D "$work/data" -A trust >/dev/null
as_pg $PGBIN/pg_ctl -D "$work/data" -l "$work/server.log" -w \
  -o "-p $PORT -k $work -c synchronous_commit=on -c fsync=on -c listen_addresses=127.0.0.1 -c max_connections=64 -c shared_buffers=256MB" start >/dev/null
as_pg /usr/bin/psql -h "$work" -p $PORT -d postgres -q -c \
  "CREATE TABLE kv (k bigint PRIMARY KEY, v text);" >/dev/null
{
  for i in 1 2 3 4 5; do echo "\\set k$i random(0, 999999)"; done
  echo "BEGIN;"
  for i in 1 2 3 4 5; do
    echo "INSERT INTO kv VALUES (:k$i, repeat('x', 100)) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;"
  done
  echo "END;"
} > "$work/upsert.sql"
chown postgres "$work/upsert.sql"
results=""
for c in "${CLIENTS[@]}"; do
  rm -f "$work"/pgbench_log.*
  out=$(cd "$work" && as_pg /usr/bin/pgbench -h "$work" -p $PORT -n -f "$work/upsert.sql" \
        -c "$c" -j "$c" -T "$SECONDS_EACH" --max-tries=10 -l postgres 2>&1)
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
  p=$(cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%d %d", a[int(NR*0.5)+1], a[int(NR*0.99)+1]}')
  p50=${p% *}; p99=${p#* }
  rows=$(awk -v t="$tps" 'BEGIN {printf "%.0f", t*5}')
  echo "clients $c: tps $tps rows/s $rows commit p50 ${p50}us p99 ${p99}us" >&2
  results="${results:+$results,}{\"clients\":$c,\"txn_per_s\":${tps%.*},\"rows_per_s\":$rows,\"txn_p50_us\":$p50,\"txn_p99_us\":$p99}"
done
echo "{\"bench\":\"pg_commit\",\"server\":\"PostgreSQL 15\",\"workload\":\"5 upserts x 100 B over 1M keys\",\"results\":[$results]}"
