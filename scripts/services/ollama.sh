#!/usr/bin/env bash
# Ollama for the integration suite: built from the Go module proxy at a pinned version and
# cached, serving on 127.0.0.1 with its models under .services/ollama/models, holding the
# project's model: Gemma 3 270M (the GGUF from PyPI that scripts/models/gemma.sh installs),
# created as `conclave-gemma3`. Nothing is pulled from a registry. When an Ollama already
# answers on the port, `up` only adds the model to it (with this build's `ollama create`).
# Usage: scripts/services/ollama.sh up|down|status
#
# Env: OLLAMA_VERSION (v0.9.6), OLLAMA_PORT (11434), OLLAMA_MODEL (conclave-gemma3),
# CONCLAVE_CACHE (~/.cache/conclave).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
svc_init ollama

OLLAMA_VERSION=${OLLAMA_VERSION:-v0.9.6}
PORT=${OLLAMA_PORT:-11434}
URL=http://127.0.0.1:$PORT
MODEL=${OLLAMA_MODEL:-conclave-gemma3}
# The server and the `ollama` client both read these.
export OLLAMA_HOST=127.0.0.1:$PORT
export OLLAMA_MODELS=$STATE/models
# CPU-only test settings: one request at a time (agents take turns anyway), and the model
# stays loaded between tests instead of being reloaded after Ollama's default 5 minutes.
export OLLAMA_NUM_PARALLEL=1 OLLAMA_MAX_LOADED_MODELS=1 OLLAMA_KEEP_ALIVE=24h

healthy () { http_ok GET "$URL/api/version"; }

# Pinned to v0.9.6 because newer versions cannot be built from the module proxy: Go module
# zips leave out `vendor/` directories, and from v0.10 on Ollama's C/C++ sources include
# headers it keeps under vendor/ (v0.11.10, v0.12.6 and v0.17.4 fail on missing
# miniaudio/miniaudio.h, stb/stb_image.h, nlohmann/json.hpp). As for kubo, the source comes
# from `go mod download` and is built as the main module.
#
# -march=native: cgo compiles ggml's CPU backend with no SIMD flags (Ollama's releases build
# per-CPU variants with CMake instead), which left Gemma 3 270M at 7-9 tokens/s here; built
# native (AVX2/AVX-512) it made 35-50.
#
# Minus AMX (issue 17): on a CPU with AMX, -march=native turns on ggml's AMX path
# (`__AMX_INT8__ && __AVX512VNNI__`), whose buffer type is in ggml-cpu/amx/, a folder with
# no Go file that cgo never compiles, so the link fails. We turn AMX off rather than
# compile those sources in: that would mean patching Ollama's module source, for a path
# its cgo build has never run, while AVX-512 (VNNI, BF16) keeps the speed above. The flags
# come from scripts/services/cpu-flags.ts (tested in test/services/cpu-flags.test.ts).
#
# The binary is cached per CPU: its name carries a variant that hashes the CPU's flags and
# the C flags, so a native binary never runs on a CPU without its instructions. Binaries
# under the old name (ollama-v0.9.6, before the variant) are left alone and unused.
#
# The other native code needs no such care. kubo needs no cgo (with CGO_ENABLED=0 it builds
# pure Go); where gcc is found Go compiles its few C parts (DataDog/zstd for pebble, net,
# os/user) with Go's default -O2 and no -march, which runs on any x86-64. node-llama-cpp
# (src/llm/gguf.ts, src/teachers/gguf.ts) loads its prebuilt @node-llama-cpp/linux-x64,
# whose ggml picks one of its CPU builds at run time by CPUID: the sapphirerapids one, taken
# only where AMX-INT8 is present, has the AMX sources compiled in, and when the kernel
# refuses AMX it prints "AMX is not ready to be used!" and runs on AVX-512.
# for_this_cpu: sets VARIANT, NATIVE_CFLAGS and BIN (the cached binary) for this machine's CPU.
for_this_cpu () {
  local node=$SERVICES_ROOT/node_modules/.bin/node out compiler=()
  need "$node" "derive the C flags for this CPU (run npm install)"
  # cgo compiles with $CC, gcc by default; GCC 10 and older refuse -mno-amx-int8.
  "${CC:-gcc}" -mno-amx-int8 -E -x c /dev/null > /dev/null 2>&1 || compiler=(--compiler-lacks-amx)
  out=$("$node" "$SERVICES_ROOT/scripts/services/cpu-flags.ts" "$(grep -m1 '^flags' /proc/cpuinfo || true)" "${compiler[@]}") \
    || die "scripts/services/cpu-flags.ts could not derive the C flags (its reason is above)"
  VARIANT=${out%%$'\n'*}
  NATIVE_CFLAGS=${out#*$'\n'}
  BIN=$CACHE/bin/ollama-$OLLAMA_VERSION-$VARIANT
}

build () {
  [ -x "$BIN" ] && return 0
  need go "build Ollama $OLLAMA_VERSION from the Go module proxy"
  need gcc "compile Ollama's ggml (cgo)"
  local work=$CACHE/build/ollama-$OLLAMA_VERSION-$VARIANT
  say "building Ollama $OLLAMA_VERSION for this CPU ($VARIANT: $NATIVE_CFLAGS; first time only, minutes; cached as $BIN; log $work/build.log)"
  # -json reports a failure on stdout (its "Error" field), so that goes to the log too.
  go_source "github.com/ollama/ollama@$OLLAMA_VERSION" "$work"
  # -v names each package as it is compiled (ggml's cgo takes most of the time): with_progress shows the latest.
  with_progress "$work/build.log" env CGO_ENABLED=1 CGO_CFLAGS="$NATIVE_CFLAGS" CGO_CXXFLAGS="$NATIVE_CFLAGS" \
    go -C "$work/src" build -v -trimpath -ldflags "-X github.com/ollama/ollama/version.Version=${OLLAMA_VERSION#v}" -o "$BIN.tmp" . \
    || die "go build of Ollama $OLLAMA_VERSION failed" "$work/build.log"
  mv "$BIN.tmp" "$BIN"
  rm -rf "$work/src"
}

# The GGUF carries no chat template, so Ollama would fall back to `{{ .Prompt }}` (no turns
# at all). This is the template Ollama v0.9.6 ships for Gemma 3
# (template/gemma3-instruct.gotmpl): the system prompt joins the first user turn, as in
# Gemma's own template and node-llama-cpp's Gemma wrapper. One thread, as in src/llm/gguf.ts:
# with the cores shared with training, two threads swung between 2 and 50 tokens/s here,
# one held 35-50.
modelfile () {
  echo "FROM $1"
  cat << 'EOF'
TEMPLATE """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{- if and (eq $i 1) $.System }}
{{ $.System }}
{{ end }}
{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- if $last }}<start_of_turn>model
{{ end }}
{{- end }}"""
PARAMETER stop <end_of_turn>
PARAMETER num_thread 1
EOF
}

has_model () { curl -sf --max-time 5 "$URL/api/tags" | grep -q "\"name\":\"$MODEL\(:latest\)\?\""; }

# Creates the model when the server lacks it, or when this script's Modelfile changed since
# it was created (so an edit here reaches the server); otherwise does nothing.
ensure_model () {
  local gguf
  gguf=$("$SERVICES_ROOT/scripts/models/gemma.sh" | tail -n 1) || die "scripts/models/gemma.sh could not install the Gemma 3 GGUF (its reason is above)"
  modelfile "$gguf" > "$STATE/Modelfile"
  if has_model && cmp -s "$STATE/Modelfile" "$STATE/Modelfile.created"; then return 0; fi
  say "creating model $MODEL from $gguf"
  "$BIN" create "$MODEL" -f "$STATE/Modelfile" >> "$LOG" 2>&1 || die "ollama create $MODEL failed"
  cp "$STATE/Modelfile" "$STATE/Modelfile.created"
}

up () {
  for_this_cpu
  if healthy; then
    timed build with_lock "ollama-$OLLAMA_VERSION-$VARIANT" build
    timed model ensure_model
    say "already up at $URL (model $MODEL)"
    return 0
  fi
  pid_alive && die "pid $(cat "$PIDFILE") runs but $URL does not answer; run '$0 down' first"
  port_busy "$PORT" && die "port $PORT is taken by another process that is not an Ollama server; set OLLAMA_PORT"
  timed build with_lock "ollama-$OLLAMA_VERSION-$VARIANT" build
  local start; start=$(now)
  start_bg "$BIN" serve
  wait_http GET "$URL/api/version" 60
  record start "$start"
  timed model ensure_model
  say "up at $URL (Ollama $OLLAMA_VERSION, model $MODEL, pid $(cat "$PIDFILE"), log $LOG)"
}

down () { stop_pid; }

status () { if healthy; then say "up at $URL"; else say "down"; return 1; fi; }

svc_main "$@"
