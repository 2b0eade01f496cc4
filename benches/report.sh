#!/bin/sh
# Regenerates the results table of benches/README.md: runs every criterion group, counts x86
# instructions per BPF instruction with callgrind, and writes the table between the markers.
#   benches/report.sh            # everything (~10 minutes on 2 cores)
#   SKIP_BENCH=1 benches/report.sh   # only callgrind + table, from the last cargo bench
set -eu
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
BENCH_CMD="cargo bench -p bpfvm-benches --benches -- --warm-up-time 1 --measurement-time 3"
if [ -z "${SKIP_BENCH:-}" ]; then
    $BENCH_CMD
fi
cargo build --release -p bpfvm-benches --bin callgrind_driver --bin report --bin scaling_ratio \
    --bin load_time
# `Vm::load` on the jit engine at 1k, 10k and 100k instructions (median of 3, thread CPU time).
LOADS="$TARGET/load_time.txt"
: > "$LOADS"
for variant in straight jumps checked checked-jumps; do
    case $variant in
        straight) flags= ;;
        jumps) flags=--jumps ;;
        checked) flags=--checked ;;
        checked-jumps) flags="--checked --jumps" ;;
    esac
    for n in 1000 10000 100000; do
        # shellcheck disable=SC2086
        echo "$variant $n $("$TARGET/release/load_time" "$n" 3 $flags jit)" >> "$LOADS"
    done
done
# Speedup on 2 threads from interleaved 1-thread / 2-thread pairs (wall clock).
"$TARGET/release/scaling_ratio" 31 > "$TARGET/scaling.txt"
OUT="$TARGET/callgrind.txt"
: > "$OUT"
count() { # program engine n -> instructions executed by the whole process
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$TARGET/release/callgrind_driver" "$1" "$2" "$3" 2>&1 >/dev/null |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for prog in alu memory; do
    for engine in interpreter jit rbpf-interpreter direct-rbpf-interpreter; do
        for n in 10000 110000; do
            echo "$prog $engine $n $(count "$prog" "$engine" "$n")" >> "$OUT"
        done
    done
done
# Helper loops: `call 8` (inlined by the interpreter), `call 5` (really called), baseline.
for prog in helper helper-call helper-baseline; do
    for engine in interpreter rbpf-interpreter; do
        for n in 10000 110000; do
            echo "$prog $engine $n $(count "$prog" "$engine" "$n")" >> "$OUT"
        done
    done
done
for engine in interpreter rbpf-interpreter; do
    for n in 1000 11000; do
        echo "empty $engine $n $(count empty "$engine" "$n")" >> "$OUT"
        echo "empty-run $engine $n $(count empty-run "$engine" "$n")" >> "$OUT"
    done
    for n in 10 110; do
        echo "empty-x1000 $engine $n $(count empty-x1000 "$engine" "$n")" >> "$OUT"
    done
    for n in 1000 11000; do
        for maps in 1 1000; do
            echo "map-value-$maps $engine $n $(count "map-value-$maps" "$engine" "$n")" >> "$OUT"
        done
    done
done
# Where the instructions of an empty test_run go (top functions, exclusive).
PROFILE="$TARGET/callgrind.profile"
valgrind --tool=callgrind --callgrind-out-file="$TARGET/callgrind.empty.out" \
    "$TARGET/release/callgrind_driver" empty interpreter 20000 >/dev/null 2>&1
{
    echo 20000
    callgrind_annotate --inclusive=no "$TARGET/callgrind.empty.out" |
        grep -E '^ *[0-9,]+ +\([ 0-9.]+%\) +[^ ]' | grep -v 'PROGRAM TOTALS'
} > "$PROFILE"
"$TARGET/release/report" \
    --criterion "$TARGET/criterion" \
    --callgrind "$OUT" \
    --scaling "$TARGET/scaling.txt" \
    --load-time "$LOADS" \
    --readme benches/README.md \
    --command "benches/report.sh  (runs: $BENCH_CMD)"
