#!/usr/bin/env bash
# `make flamegraphs`: where each job's time goes at Last.fm 1×, as pictures. Runs bronze, silver
# and gold (release build) one after the other on a fresh lake over the benchmark's 1× landing
# (bench.py makes it, once, and `make bench` uses the same), each under `perf record`
# sampling every thread, and draws one flame graph per job into docs/perf/flame-<job>.svg.
# Stacks are unwound from the binaries' unwind tables (--call-graph dwarf), so the release build
# needs no debug information or frame pointers. Installs what it lacks: Debian's linux-perf, and
# inferno (the flame graph drawer, by cargo install) under ~/.cache/lakehouse-jobs/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/release
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lakehouse-jobs
tools=$cache/tools/bin
work=${FLAME_WORK:-bench/work/flame}
out=docs/perf

if ! command -v perf >/dev/null; then
  echo "installing linux-perf (Debian package) for perf record" >&2
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq linux-perf >&2
fi
if [[ ! -x $tools/inferno-flamegraph ]]; then
  echo "installing inferno (cargo install) into $tools, once" >&2
  cargo install --locked --quiet inferno --root "$(dirname "$tools")"
fi
landing=$(python3 bench/bench.py --bin "$bin" --scales 1 --landing-only)

rm -rf "$work" && mkdir -p "$work" "$out"
for job in bronze silver gold; do
  echo "flamegraphs: $job" >&2
  # 99 samples a second of each thread, each with 16 KiB of its stack to unwind
  perf record --quiet -F 99 --call-graph dwarf,16384 -o "$work/$job.perf" -- \
    "$bin/$job" --lake "$work/lake" --landing "$landing" \
    >"$work/$job.out" 2>"$work/$job.err" || {
    echo "flamegraphs: $job failed; see $work/$job.err" >&2
    exit 1
  }
  summary=$(grep -o "$job succeeded.*" "$work/$job.err" | tail -n 1)
  # --no-inline: resolving inlined frames runs addr2line per address, for many minutes
  perf script --no-inline -i "$work/$job.perf" 2>/dev/null |
    "$tools/inferno-collapse-perf" --all |
    "$tools/inferno-flamegraph" --title "$job, Last.fm 1×: $summary" \
      --subtitle "perf record -F 99 --call-graph dwarf, every thread; made by make flamegraphs on $(date -u +%F)" \
      --width 1600 >"$out/flame-$job.svg"
  echo "flamegraphs: $out/flame-$job.svg ($summary)" >&2
done
rm -f "$work"/*.perf
