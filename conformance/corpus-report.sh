#!/bin/sh
# Regenerates the measured tables of conformance/CORPUS.md with the corpus tool (Linux, as
# root): the tool runs twice on the objects under DIR, and its Markdown replaces what is
# between the markers. Extra arguments go to the tool (e.g. --libbpf PATH).
#   conformance/corpus-report.sh DIR [tool options...]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [tool options...]" >&2; exit 2; }
dir=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
doc=$root/conformance/CORPUS.md
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$root"
cargo build --release -q -p bpfvm-conformance --bin corpus
tool=$root/target/release/corpus
"$tool" "$dir" --markdown "$tmp/default.md" "$@" >/dev/null
"$tool" "$dir" --markdown "$tmp/given.md" --legacy-types --btf /sys/kernel/btf/vmlinux "$@" >/dev/null
splice() { # marker file
    awk -v m="$1" -v f="$2" '
        $0 == "<!-- corpus:" m ":begin -->" { print; while ((getline l < f) > 0) print l; skip = 1; next }
        $0 == "<!-- corpus:" m ":end -->" { skip = 0 }
        !skip { print }' "$doc" > "$tmp/doc" && cp "$tmp/doc" "$doc"
}
splice default "$tmp/default.md"
splice given "$tmp/given.md"
