#!/usr/bin/env bash
# Regenerate tests/data/refs/onnx_tool_zoo.json and the files beside it (see ../onnx_tool_zoo.md).
#
#   PY=/path/to/onnxtool-venv/bin/python tests/data/refs/onnx_tool_zoo_scripts/run_all.sh [WORKDIR]
#
# PY is a Python with requirements-lock.txt installed (default: python3 on PATH). Everything
# goes to WORKDIR (default: a new temp dir): the folded models (~1 GB), both onnx-tool profiles,
# the pure count, onnx_tool_zoo.json, onnx_tool_zoo_nodes.json and csv/. The last step compares
# the new onnx_tool_zoo.json with the committed one (every field but "date") and fails on a
# difference. Nothing in the repo is written: copy the outputs over by hand if they should change.
set -euo pipefail
PY=${PY:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
REFS=$(dirname "$HERE")
WORK=${1:-$(mktemp -d -t onnx_tool_zoo.XXXXXX)}
mkdir -p "$WORK"
export PYTHONHASHSEED=0
ZOO=$("$PY" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light"))')
echo "python: $("$PY" -c 'import sys; print(sys.executable)'); models: $ZOO; work dir: $WORK"
"$PY" "$HERE/fold_constantofshape.py" "$ZOO" "$WORK/folded"
"$PY" "$HERE/profile_onnx_tool.py" "$ZOO" "$WORK/profile_original.json"
"$PY" "$HERE/profile_onnx_tool.py" "$WORK/folded" "$WORK/profile_folded.json" "$WORK/csv"
"$PY" "$HERE/pure_macs.py" "$ZOO" "$WORK/pure.json"
"$PY" "$HERE/assemble.py" "$WORK" --check "$REFS/onnx_tool_zoo.json"
echo "outputs in $WORK"
