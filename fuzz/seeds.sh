#!/usr/bin/env bash
# Build the seed corpora in fuzz/corpus/<target>/ (not committed; rerun any time).
#   map_ops:  a few fixed operation scripts (one per map type and CPU count)
#   bytecode: every conformance vector's bytecode (and memory) from the shared index
#   elf:      every vm/tests/fixtures/*.o
set -euo pipefail
cd "$(dirname "$0")"
index=../../shared/conformance/bpf_conformance/index.tsv

mkdir -p corpus/map_ops corpus/bytecode corpus/elf

# map_ops: header (type, cpus, value size, max entries, prealloc) + a deterministic op stream.
for t in 0 1 2 3; do
  for n in 0 1 3; do
    python3 - "$t" "$n" > "corpus/map_ops/seed_${t}_${n}" <<'PY'
import random, sys
t, n = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(t * 16 + n)
sys.stdout.buffer.write(bytes([t, n, r.randrange(7), r.randrange(8), r.randrange(2)]) +
                        bytes(r.randrange(256) for _ in range(600)))
PY
  done
done

# bytecode: the target reads [setup byte][u16 packet length][packet][code]; seeds use
# setup 0 and the vector's memory (if any) as the packet.
if [[ -f $index ]]; then
  tail -n +3 "$index" | while IFS=$'\t' read -r file _ _ _ _ _ mem code; do
    [[ $code == "-" || -z $code ]] && continue
    [[ $mem == "-" ]] && mem=""
    name=$(basename "$file" .data)
    python3 - "$mem" "$code" > "corpus/bytecode/$name" <<'PY'
import sys
mem, code = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
sys.stdout.buffer.write(bytes([0]) + len(mem).to_bytes(2, "little") + mem + code)
PY
  done
else
  echo "note: $index missing, bytecode corpus left empty" >&2
fi

# elf: the loader fixtures.
cp ../vm/tests/fixtures/*.o corpus/elf/ 2>/dev/null || echo "note: no ELF fixtures yet" >&2
echo "corpora: $(ls corpus/map_ops | wc -l) map_ops, $(ls corpus/bytecode | wc -l) bytecode, $(ls corpus/elf | wc -l) elf"
