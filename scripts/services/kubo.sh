#!/usr/bin/env bash
# kubo (IPFS) for the integration suite: built from the Go module proxy at a pinned
# version and cached, initialised offline (no bootstrap peers, no MDNS, loopback only),
# RPC API on 127.0.0.1. Usage: scripts/services/kubo.sh up|down|status
set -euo pipefail

KUBO_VERSION=${KUBO_VERSION:-v0.42.0}
CACHE=${CONCLAVE_CACHE:-$HOME/.cache/conclave}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=$ROOT/.services/kubo
BIN=$CACHE/bin/ipfs-$KUBO_VERSION
API_PORT=${KUBO_API_PORT:-5001}
API=http://127.0.0.1:$API_PORT
LOG=$STATE/kubo.log
export IPFS_PATH=$STATE/repo

fail () { echo "kubo: $*" >&2; [ -f "$LOG" ] && { echo "--- last lines of $LOG:" >&2; tail -n 20 "$LOG" >&2; }; exit 1; }
healthy () { curl -sf -X POST "$API/api/v0/version" > /dev/null 2>&1; }

build () {
  [ -x "$BIN" ] && return
  command -v go > /dev/null || fail "Go is needed to build kubo $KUBO_VERSION (go install from the Go module proxy)"
  echo "kubo: building $KUBO_VERSION (first time only; cached in $BIN)…" >&2
  local work=$CACHE/build/kubo-$KUBO_VERSION
  mkdir -p "$work" "$(dirname "$BIN")"
  # `go install github.com/ipfs/kubo/cmd/ipfs@VERSION` cannot work: kubo's go.mod has a
  # `replace` directive, which Go honours only in the main module (and the proxy refuses
  # kubo's version list, 403). So fetch kubo's module source from the proxy at the pinned
  # version and build it as the main module.
  ( set -e
    dir=$(go mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] || { echo "go mod download found no source for kubo $KUBO_VERSION" >&2; exit 1; }
    rm -rf "$work/src" && cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
    cd "$work/src"
    go build -o "$BIN.tmp" ./cmd/ipfs > "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
    mv "$BIN.tmp" "$BIN" ) || fail "could not build kubo $KUBO_VERSION (log above)"
}

up () {
  mkdir -p "$STATE"
  if healthy; then echo "kubo: already up at $API"; return; fi
  build
  if [ ! -f "$IPFS_PATH/config" ]; then
    "$BIN" init --profile=test > "$LOG" 2>&1 || fail "ipfs init failed"
  fi
  "$BIN" config Addresses.API "/ip4/127.0.0.1/tcp/$API_PORT" >> "$LOG" 2>&1
  "$BIN" config --json Addresses.Gateway '[]' >> "$LOG" 2>&1
  "$BIN" config --json Bootstrap '[]' >> "$LOG" 2>&1
  "$BIN" config --json Discovery.MDNS.Enabled false >> "$LOG" 2>&1
  nohup "$BIN" daemon --offline >> "$LOG" 2>&1 &
  echo $! > "$STATE/pid"
  for _ in $(seq 1 60); do
    healthy && { echo "kubo: up at $API (pid $(cat "$STATE/pid"), log $LOG)"; return; }
    kill -0 "$(cat "$STATE/pid")" 2> /dev/null || fail "the daemon exited"
    sleep 0.5
  done
  fail "no answer from $API after 30 s"
}

down () {
  if [ -f "$STATE/pid" ]; then kill "$(cat "$STATE/pid")" 2> /dev/null || true; rm -f "$STATE/pid"; fi
  echo "kubo: down"
}

status () { if healthy; then echo "kubo: up at $API"; else echo "kubo: down"; return 1; fi; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
