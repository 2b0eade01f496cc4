#!/bin/sh
# Rebuilds bpf/xdp_filter.o from bpf/xdp_filter.bpf.c (the test uses the committed .o and
# never needs clang). Needs clang-19 and libbpf-dev (apt-get install clang-19 libbpf-dev).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
"$CLANG" -target bpf -O2 -g -Wall -Werror -I/usr/include/$(uname -m)-linux-gnu \
	-ffile-prefix-map=$(pwd)=. -c xdp_filter.bpf.c -o xdp_filter.o
