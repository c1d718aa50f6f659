#!/usr/bin/env bash
# Per-request cost of a change: this tree and REV, each one uvicorn worker over the same
# database, driven by wrk in alternating order (each round runs both orders, since the
# server measured first in a pair tends to be faster).
#
#   benchmarks/compare_trees.sh REV [DATABASE_URL]
#
# Default database: benchmarks/scale.py's 100x one on the benchmark cluster. Needs wrk.
set -euo pipefail
REV=${1:?usage: compare_trees.sh REV [DATABASE_URL]}
DB=${2:-postgresql://tracker@127.0.0.1:55440/tracker_scale_100x}
HERE=$(cd "$(dirname "$0")/.." && pwd)
OTHER=$(mktemp -d)
git -C "$HERE" worktree add -q --detach "$OTHER/tree" "$REV"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; git -C "$HERE" worktree remove --force "$OTHER/tree"' EXIT
serve() {  # tree port
  if curl -s -o /dev/null "http://127.0.0.1:$2/"; then echo "port $2 is taken" >&2; exit 1; fi
  cd "$1"
  DATABASE_URL=$DB PYTHONPATH=$1 "$HERE/.venv/bin/uvicorn" --factory geo_api.main:create_app \
    --port "$2" --log-level warning &
  PIDS+=($!)
  cd "$HERE"
}
serve "$HERE" 8101
serve "$OTHER/tree" 8102
sleep 8
MARKER=$(psql "${DB}" -Atc "SELECT id FROM marker ORDER BY id LIMIT 1 OFFSET 123456")
for path in "/ogc/collections/markers/items?limit=10" "/ogc/collections/markers/items/$MARKER" "/api/markers/$MARKER"; do
  for order in "8101 8102" "8102 8101"; do
    for port in $order; do
      curl -s -o /dev/null "http://127.0.0.1:$port$path"
      rate=$(wrk -t2 -c8 -d5s "http://127.0.0.1:$port$path" | awk '/Requests\/sec/ {print $2}')
      name=$([ "$port" = 8101 ] && echo "this tree" || echo "$REV")
      echo "$path  first: $([ "${order%% *}" = "$port" ] && echo yes || echo no)  $name  $rate req/s"
    done
  done
done
