#!/usr/bin/env bash
# kubo (IPFS) for the integration suite: built from the Go module proxy at a pinned
# version and cached, initialised offline (no bootstrap peers, no MDNS, no swarm, no
# gateway), RPC API on 127.0.0.1. Usage: scripts/services/kubo.sh up|down|status
#
# Env: KUBO_VERSION (v0.43.0), KUBO_API_PORT (5001), CONCLAVE_CACHE (~/.cache/conclave).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
svc_init kubo

KUBO_VERSION=${KUBO_VERSION:-v0.43.0}
API_PORT=${KUBO_API_PORT:-5001}
API=http://127.0.0.1:$API_PORT
BIN=$CACHE/bin/ipfs-$KUBO_VERSION
export IPFS_PATH=$STATE/repo

healthy () { http_ok POST "$API/api/v0/version"; }

# `go install github.com/ipfs/kubo/cmd/ipfs@VERSION` cannot work through this machine's
# module proxy: go install first reads kubo's version list to check for deprecation, and
# the proxy answers that list with 403. So fetch kubo's module source at the pinned
# version (`go mod download`, same proxy, same checksums) and build it as the main module,
# which is what go install does. (v0.43.1 cannot be built at all here: its go.mod replaces
# go-libp2p with a fork version the proxy refuses, 403.)
build () {
  [ -x "$BIN" ] && return 0
  need go "build kubo $KUBO_VERSION from the Go module proxy"
  local work=$CACHE/build/kubo-$KUBO_VERSION
  say "building kubo $KUBO_VERSION (first time only; cached as $BIN; log $work/build.log)"
  go_source "github.com/ipfs/kubo@$KUBO_VERSION" "$work"
  # -v names each package as it is compiled: with_progress shows the latest.
  with_progress "$work/build.log" go -C "$work/src" build -v -trimpath -o "$BIN.tmp" ./cmd/ipfs \
    || die "go build of kubo $KUBO_VERSION failed" "$work/build.log"
  mv "$BIN.tmp" "$BIN"
  rm -rf "$work/src"
}

configure () {
  if [ ! -f "$IPFS_PATH/config" ]; then
    # The test profile: no bootstrap peers, MDNS off, swarm on loopback with random ports.
    "$BIN" init --profile=test >> "$LOG" 2>&1 || die "ipfs init failed"
  fi
  local set_json=(
    "Addresses.API=\"/ip4/127.0.0.1/tcp/$API_PORT\""
    'Addresses.Gateway=[]'
    'Addresses.Swarm=[]'
    'Bootstrap=[]'
    'Discovery.MDNS.Enabled=false'
    'Routing.Type="none"'
    'AutoConf.Enabled=false'
  )
  local kv
  for kv in "${set_json[@]}"; do
    "$BIN" config --json "${kv%%=*}" "${kv#*=}" >> "$LOG" 2>&1 || die "ipfs config ${kv%%=*} failed"
  done
}

up () {
  if healthy; then say "already up at $API"; return 0; fi
  pid_alive && die "pid $(cat "$PIDFILE") runs but $API does not answer; run '$0 down' first"
  port_busy "$API_PORT" && die "port $API_PORT is taken by another process that is not a kubo API; set KUBO_API_PORT"
  timed build with_lock kubo build
  configure
  local start; start=$(now)
  start_bg "$BIN" daemon --offline
  wait_http POST "$API/api/v0/version" 60
  record start "$start"
  say "up at $API (kubo $KUBO_VERSION, pid $(cat "$PIDFILE"), log $LOG)"
}

down () { stop_pid; }

status () { if healthy; then say "up at $API"; else say "down"; return 1; fi; }

svc_main "$@"
