#!/usr/bin/env bash
# Python's `safetensors` (with NumPy) from PyPI, in a cached virtualenv: what a user of
# `conclave export` loads the model with. Prints the venv's python. Idempotent.
# Usage: scripts/models/safetensors.sh   →   /…/venv/safetensors-0.8.0/bin/python
# Env: SAFETENSORS_VERSION (0.8.0), CONCLAVE_PYTHON (python3), CONCLAVE_CACHE (~/.cache/conclave).
set -euo pipefail
source "$(dirname "$0")/../services/lib.sh"
svc_init safetensors

VERSION=${SAFETENSORS_VERSION:-0.8.0}
VENV=$CACHE/venv/safetensors-$VERSION
BUILD_LOG=$CACHE/build/safetensors-$VERSION.log

install () { pip_venv "$VENV" "$BUILD_LOG" "safetensors[numpy]==$VERSION"; }

with_lock safetensors install
"$VENV/bin/python" -c 'import safetensors.numpy' || die "safetensors is installed in $VENV but does not import" "$BUILD_LOG"
echo "$VENV/bin/python"
