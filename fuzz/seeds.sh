#!/usr/bin/env bash
# Build the seed corpora in fuzz/corpus/<target>/ (not committed; rerun any time).
#   map_ops:  a few fixed operation scripts (one per map type and CPU count)
#   bytecode: every conformance vector's program (and memory), assembled from its .data file
#   bytecode_jit: the bytecode seeds
#   elf:      every vm/tests/fixtures/*.o
#   btf:      the .BTF and .BTF.ext sections of every fixture, in the btf target's format
#             ([setup][u32 .BTF length][.BTF][.BTF.ext]), once per wrapper setup
#   elf, btf: amp_* seeds shaped like the amplification cases of issue 12 §4 (shared BTF
#             strings, line info into a long string, a union DAG, a struct containing itself,
#             many DATASECs, huge .bss and values, many programs calling one function),
#             written by amplify_seeds.rs (compiled with rustc alone: std only)
set -euo pipefail
cd "$(dirname "$0")"

mkdir -p corpus/map_ops corpus/bytecode corpus/elf corpus/btf

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
# setup 0 and the vector's memory (if any) as the packet, the program assembled from the
# vector's .data file by bpfvm-conformance (no index.tsv needed).
cargo run -q --manifest-path ../Cargo.toml -p bpfvm-conformance --bin vector_seeds -- \
  corpus/bytecode || echo "note: conformance vectors unavailable, bytecode corpus left empty" >&2
# bytecode_jit: the same inputs (the jit target reads the bytecode target's format).
mkdir -p corpus/bytecode_jit
cp corpus/bytecode/* corpus/bytecode_jit/ 2>/dev/null || true

# elf: the loader fixtures.
cp ../vm/tests/fixtures/*.o corpus/elf/ 2>/dev/null || echo "note: no ELF fixtures yet" >&2

# btf: the fixtures' BTF, read from their section headers.
for obj in ../vm/tests/fixtures/*.o; do
  python3 - "$obj" "corpus/btf/$(basename "$obj" .o)" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
shoff, = struct.unpack_from("<Q", b, 0x28)
shnum, shstrndx = struct.unpack_from("<HH", b, 0x3c)
hdr = lambda i: struct.unpack_from("<IIQQQQIIQQ", b, shoff + 64 * i)
stroff = hdr(shstrndx)[4]
secs = {}
for i in range(shnum):
    h = hdr(i)
    name = b[stroff + h[0]:b.index(b"\0", stroff + h[0])].decode()
    secs[name] = b[h[4]:h[4] + h[5]]
btf, ext = secs.get(".BTF", b""), secs.get(".BTF.ext", b"")
if btf:
    for setup in (0, 7, 0x37):
        with open(f"{sys.argv[2]}_{setup:02x}", "wb") as f:
            f.write(bytes([setup]) + struct.pack("<I", len(btf)) + btf + ext)
PY
done
# amp_*: the amplification shapes (see amplify_seeds.rs).
bin=$(mktemp -d)
rustc --edition 2021 -O -o "$bin/amplify_seeds" amplify_seeds.rs
"$bin/amplify_seeds" corpus
rm -rf "$bin"

echo "corpora: $(ls corpus/map_ops | wc -l) map_ops, $(ls corpus/bytecode | wc -l) bytecode, $(ls corpus/bytecode_jit | wc -l) bytecode_jit, $(ls corpus/elf | wc -l) elf, $(ls corpus/btf | wc -l) btf"
