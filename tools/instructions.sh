#!/usr/bin/env bash
# Instructions the server executes per request, counted by valgrind's callgrind: unlike
# requests/s on a shared two-core machine, the count repeats exactly for the same binary and
# requests, so it shows small CPU wins and losses. Kernel time (networking) is not included.
#
# usage: tools/instructions.sh [BINARY] [WORKLOAD...]   (default: target/release/ferrodyn; get put update query)
# env: PORT (default 8399), N (measured requests per workload, default 2000), ITEM_SIZE (default 1024),
#      SERVE_ARGS (more `serve` flags, e.g. "--keys-file keys.json"; the bench signs with
#      AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), STORAGE (default "--in-memory"; e.g.
#      "--data-dir /tmp/d" for the durable engine)
# needs: valgrind (Debian package valgrind), a release build.
set -euo pipefail
BIN=${1:-target/release/ferrodyn}
shift || true
WORKLOADS=${*:-get put update query}
PORT=${PORT:-8399}
N=${N:-2000}
ITEM_SIZE=${ITEM_SIZE:-1024}
OUT=$(mktemp -d)
trap 'kill "$VPID" 2>/dev/null || true; rm -rf "$OUT"' EXIT

valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" --dump-instr=no \
  "$BIN" serve ${STORAGE:---in-memory} --port "$PORT" ${SERVE_ARGS:-} >"$OUT/server.log" 2>&1 &
VPID=$!
for _ in $(seq 200); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.1
done
bench() {
  "$BIN" bench --endpoint "http://127.0.0.1:$PORT" --keys 100 --item-size "$ITEM_SIZE" \
    --connections 1 --seed 1 --quiet "$@" >/dev/null
}
# 100 partitions of 20 rows: Query returns 20 items, the single-item workloads use row "0".
bench --create-table --load 100 --rows-per-key 20 --workload query --requests 1
for w in $WORKLOADS; do
  bench --workload "$w" --requests 100
  callgrind_control -z "$VPID" >/dev/null 2>&1
  bench --workload "$w" --requests "$N"
  callgrind_control -d "$VPID" >/dev/null 2>&1
  f=$(ls -t "$OUT"/cg.* | head -1)
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
  printf '%-10s %8d instructions/request\n' "$w" $((ir / N))
done
