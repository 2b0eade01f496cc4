#!/usr/bin/env bash
# Run one cargo-fuzz target from its seed corpus with the project's resource limits, so an
# input that makes bpfvm use memory or time out of proportion to its size is reported as a
# finding (with a reproducer in fuzz/artifacts/<target>/), not merely a slow run:
#   -rss_limit_mb=2048     the whole process (AddressSanitizer's own overhead included)
#   -malloc_limit_mb=256   any single allocation
#   -timeout=10            seconds for one input
# Usage: fuzz/run.sh <target> [seconds] [extra libFuzzer flags...]   (default 600 s)
# Needs the nightly toolchain and cargo-fuzz; run fuzz/seeds.sh first.
set -euo pipefail
cd "$(dirname "$0")"
target="$1"
secs="${2:-600}"
shift $(( $# < 2 ? $# : 2 ))
exec cargo +nightly fuzz run "$target" "corpus/$target" -- \
  -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 \
  -max_total_time="$secs" -print_final_stats=1 "$@"
