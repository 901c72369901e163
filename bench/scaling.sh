#!/usr/bin/env bash
# The throughputs README "Scaling out" builds its estimates from, measured on this machine with
# the release binaries built with CLUSTER=1 (make build PROFILE=release CLUSTER=1):
#   - bronze: one process over the plays cut into 8 objects, then 2 shards at once;
#   - silver: one full run, then 2 parts at once (and the plain run after them);
#   - a scan and aggregate of silver.lastfm_listens, and gold, in one process and on a Ballista
#     cluster of one executor (2 task slots) started here.
# Usage: bench/scaling.sh [ROWS] (default 19150868, the Last.fm 1K size). Prints a Markdown
# table and writes it to bench/results/<time>-scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-19150868}
bin=${LAKE_BIN:-${CARGO_TARGET_DIR:-target}/release}
work=$(mktemp -d "${TMPDIR:-/tmp}/lake-scaling.XXXXXX")
trap 'pkill -P $$ || true; rm -rf "$work"' EXIT
"$bin/lake" cluster --help >/dev/null || { echo "build with CLUSTER=1 first" >&2; exit 2; }
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)-scaling.md
lines=()

# seconds and peak RSS (MiB) of one command; its run record's rows_in
timed() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/record" 2> "$work/log" || {
    tail -20 "$work/log" >&2; exit 1; }
  read -r secs kib < "$work/time"
  local rows_in
  rows_in=$(tail -n 1 "$work/record" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("rows_in", ""))' 2>/dev/null || true)
  lines+=("| $label | $secs | $((kib / 1024)) | ${rows_in:-} |")
  echo "$label: $secs s, $((kib / 1024)) MiB, rows_in ${rows_in:-}" >&2
}

# seconds of several commands started together (the slowest one's end)
together() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  local pids=()
  for cmd in "$@"; do
    bash -c "$cmd" > /dev/null 2>> "$work/together.log" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { tail -20 "$work/together.log" >&2; exit 1; }; done
  end=$(date +%s.%N)
  local secs
  secs=$(python3 -c "print(round($end - $start, 1))")
  lines+=("| $label | $secs | | |")
  echo "$label: $secs s" >&2
}

echo "generating $rows plays" >&2
"$bin/lake-gen" lastfm "$work/gen" --rows "$rows" --users 1000 --seed 7 > /dev/null
mkdir -p "$work/landing/lastfm"
cp "$work/gen/userid-profile.tsv" "$work/landing/lastfm/"
split -n l/8 -d --additional-suffix=.tsv "$work/gen/userid-timestamp-artid-artname-traid-traname.tsv" "$work/landing/lastfm/plays-"
rm -rf "$work/gen"

one=(--lake "$work/one" --landing "$work/landing")
timed "bronze, 1 process, 8 objects" "$bin/bronze" "${one[@]}"
timed "silver, 1 process, full" "$bin/silver" "${one[@]}"
timed "gold, in one process" "$bin/gold" "${one[@]}"

fan="--lake $work/fan --landing $work/landing"
together "bronze, 2 shards at once" "$bin/bronze $fan --shard 0/2" "$bin/bronze $fan --shard 1/2"
together "silver, 2 parts at once" "$bin/silver $fan --part 0/2" "$bin/silver $fan --part 1/2"
timed "silver, the plain run after the parts" "$bin/silver" --lake "$work/fan" --landing "$work/landing"

query="SELECT year, month, count(*) AS plays, count(DISTINCT user_id) AS users, count(DISTINCT track_name) AS tracks FROM silver.lastfm_listens GROUP BY year, month"
timed "scan + aggregate of silver.lastfm_listens, in one process" "$bin/lake" --lake "$work/one" sql "$query" --format json
"$bin/lake" cluster scheduler --bind 127.0.0.1:50110 > "$work/scheduler.log" 2>&1 &
sleep 1
"$bin/lake" --lake "$work/one" cluster executor --scheduler 127.0.0.1:50110 --bind-host 127.0.0.1 --port 50111 --grpc-port 50112 --tasks 2 > "$work/executor.log" 2>&1 &
for _ in $(seq 1 50); do grep -q "register executor request" "$work/scheduler.log" && break; sleep 0.2; done
timed "scan + aggregate, on Ballista (1 executor, 2 slots)" "$bin/lake" --lake "$work/one" sql "$query" --format json --scheduler df://127.0.0.1:50110
timed "gold --full-refresh, on Ballista (1 executor, 2 slots)" "$bin/gold" --lake "$work/one" --full-refresh --scheduler df://127.0.0.1:50110
timed "gold --full-refresh, in one process" "$bin/gold" --lake "$work/one" --full-refresh

{
  echo "# Scaling measurements, $(date -u +%FT%TZ), $rows plays, $(nproc) cores"
  echo
  echo "| step | seconds | peak RSS MiB | rows in |"
  echo "|---|---|---|---|"
  printf '%s\n' "${lines[@]}"
} | tee "$out"
