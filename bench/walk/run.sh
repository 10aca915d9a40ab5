#!/usr/bin/env bash
# bench/walk/run.sh [SIZES...] — the latency map's lookup with and without the IPv4 trie's
# first-level index (PrefixTrie.starts): ns per lookup of a random client /24 in maps of
# random /24s (default 4 096, 65 536 and 1 000 000), as a markdown table. Builds bench/walk
# (a package of its own, on the Scoring library of this repository) in release mode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
swift build -c release --product walk >/dev/null 2>&1 || swift build -c release --product walk
taskset -c "${CPU:-0}" .build/release/walk "$@"
