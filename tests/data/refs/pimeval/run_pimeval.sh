#!/usr/bin/env bash
# Rerun the PIMeval reference behind tests/test_dram_pim.py (PIMEVAL_MS, PIMEVAL_ROW_NS).
#
#   run_pimeval.sh PIMEVAL_DIR [COMMIT]
#
# PIMEVAL_DIR: a PIMeval-PIMbench source tree (a clone, or `git archive` of one). Only libpimeval/ and
#   configs/taco/DDR4_8Gb_x16_3200.ini are used. libpimeval/lib/libpimeval.a is built with the
#   library's own Makefile (`make perf`, g++ -O3) when it is missing.
# COMMIT: recorded in the JSON; defaults to `git -C PIMEVAL_DIR rev-parse HEAD` when that is a git
#   work tree, else "unknown". The recorded reference is 40ce16224c02eadf809d9273b5dbdee53a565f25.
#
# Writes, beside this script (or under $OUT_DIR):
#   pimeval_raw.txt     the driver's whole stdout (PIMeval's config banner + one pimShowStats per case)
#   pimeval_refs.json   parsed figures, the stats excerpts, and the check against the recorded constants
# Exit status 0 only when every parsed runtime equals the recorded constant.
#
# Environment: JOBS (make -j, default 2), CXX (default g++), OUT_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../../.." && pwd)"
PIMEVAL="$(cd "${1:?usage: run_pimeval.sh PIMEVAL_DIR [COMMIT]}" && pwd)"
COMMIT="${2:-$(git -C "$PIMEVAL" rev-parse HEAD 2>/dev/null || echo unknown)}"
OUT_DIR="${OUT_DIR:-$HERE}"
CXX="${CXX:-g++}"
JOBS="${JOBS:-2}"
MEMCFG="$PIMEVAL/configs/taco/DDR4_8Gb_x16_3200.ini"

[ -f "$PIMEVAL/libpimeval/src/libpimeval.h" ] || { echo "no libpimeval/src/libpimeval.h under $PIMEVAL" >&2; exit 2; }
[ -f "$MEMCFG" ] || { echo "no $MEMCFG" >&2; exit 2; }

# 1. libpimeval, the library's perf target (CXXFLAGS -Wall -Wextra -std=c++17 -O3 -Wno-unused-parameter
#    -DPIM_SIM_TARGET=PIM_DEVICE_NONE); the simulation target comes from pim_ops.cfg at run time.
if [ ! -f "$PIMEVAL/libpimeval/lib/libpimeval.a" ]; then
  make -C "$PIMEVAL/libpimeval" perf -j"$JOBS" CXX="$CXX"
fi

# 2. the driver, in a scratch folder holding the simulator config and the DDR4 memory config it names
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pimeval_run.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/pim_ops.cfg" "$MEMCFG" "$WORK/"
"$CXX" -std=c++17 -O3 -Wall -I"$PIMEVAL/libpimeval/src" "$HERE/pim_ops.cpp" \
  -L"$PIMEVAL/libpimeval/lib" -lpimeval -o "$WORK/pim_ops"

# 3. run (relative config paths, so the banner does not carry this machine's paths)
(cd "$WORK" && ./pim_ops pim_ops.cfg) > "$OUT_DIR/pimeval_raw.txt"

# 4. parse and check
python3 "$HERE/parse_pimeval.py" \
  --raw "$OUT_DIR/pimeval_raw.txt" --cfg "$HERE/pim_ops.cfg" --memcfg "$MEMCFG" \
  --recorded "$REPO_ROOT/tests/test_dram_pim.py" --commit "$COMMIT" \
  --compiler "$("$CXX" --version | head -n1)" \
  --out "$OUT_DIR/pimeval_refs.json"
