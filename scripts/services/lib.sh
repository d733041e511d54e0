# Shared helpers for scripts/services/*.sh (sourced, not run).
#
# Each service keeps its state (config, data, pid file, log) under .services/<name>/ in
# the repository root, and its builds (binaries, virtualenvs, Go caches, models) under
# ${CONCLAVE_CACHE:-$HOME/.cache/conclave}, keyed by version, so a second `up` reuses them.
# Everything listens on 127.0.0.1 only.

SERVICES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CONCLAVE_CACHE:-$HOME/.cache/conclave}
# Go builds share one module cache and one build cache under the cache dir.
export GOMODCACHE=${CONCLAVE_GOMODCACHE:-$CACHE/go/mod}
export GOCACHE=${CONCLAVE_GOCACHE:-$CACHE/go/build}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

# svc_init NAME: sets SERVICE, STATE (.services/NAME), LOG (.services/NAME/NAME.log), PIDFILE.
svc_init () {
  SERVICE=$1
  STATE=$SERVICES_ROOT/.services/$SERVICE
  LOG=$STATE/$SERVICE.log
  PIDFILE=$STATE/$SERVICE.pid
  mkdir -p "$STATE" "$CACHE/bin" "$CACHE/locks"
}

say () { echo "$SERVICE: $*" >&2; }

# die REASON [FILE]: a loud failure that names the log to read, with its last lines.
die () {
  local file=${2:-$LOG}
  {
    echo
    echo "✗ $SERVICE FAILED: $1"
    if [ -s "$file" ]; then
      echo "  log: $file (last 25 lines below)"
      tail -n 25 "$file" | sed 's/^/  | /'
    else
      echo "  log: $file"
    fi
    echo
  } >&2
  exit 1
}

# with_lock NAME CMD...: runs CMD holding an exclusive lock, so two `up`s never build the same thing at once.
with_lock () {
  local name=$1; shift
  (
    flock 9
    "$@"
  ) 9> "$CACHE/locks/$name.lock"
}

# with_progress LOG CMD...: runs CMD with its output appended to LOG and, every
# ${CONCLAVE_PROGRESS_S:-30} s while it runs, says how long it has run and LOG's last
# non-empty line: a build of minutes shows it is alive, as plain lines that read the same
# in a terminal and in a CI log (no carriage returns, no spinner). Returns CMD's status.
with_progress () {
  local log=$1; shift
  local every=${CONCLAVE_PROGRESS_S:-30} start=$SECONDS rc=0 pid last
  local next=$((start + every))
  "$@" >> "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2> /dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ]; then
      last=$(tail -n 50 "$log" | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c 1-160)
      say "… $(minutes $((SECONDS - start))) so far${last:+; last: $last}"
      next=$((next + every))
    fi
  done
  wait "$pid" || rc=$?
  return $rc
}

# minutes S: 185 → 3m05s.
minutes () { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# pip_venv VENV LOG REQUIREMENT: a cached virtualenv holding REQUIREMENT from PyPI, built once
# (marked by VENV/.installed); the build's output goes to LOG, and a failure dies naming it.
pip_venv () {
  local venv=$1 log=$2 requirement=$3
  [ -f "$venv/.installed" ] && return 0
  local python=${CONCLAVE_PYTHON:-python3}
  need "$python" "create a virtualenv for $requirement"
  mkdir -p "$(dirname "$log")"
  say "installing $requirement from PyPI into $venv (first time only; log $log)"
  rm -rf "$venv"
  "$python" -m venv "$venv" > "$log" 2>&1 || die "$python -m venv $venv failed" "$log"
  with_progress "$log" "$venv/bin/pip" install --disable-pip-version-check --progress-bar off "$requirement" || die "pip install $requirement failed" "$log"
  touch "$venv/.installed"
}

# go_source MODULE@VERSION WORK: the module's source from the Go module proxy (`go mod
# download`: same proxy and checksums as `go install`), copied writable to WORK/src, to be
# built as the main module. `go mod download -json` reports failures on stdout, so that
# goes to WORK/build.log too.
go_source () {
  local dir
  mkdir -p "$2"
  dir=$(go mod download -json "$1" 2> "$2/build.log" | tee -a "$2/build.log" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') || true
  [ -n "$dir" ] || die "go mod download $1 failed" "$2/build.log"
  rm -rf "$2/src" && cp -r "$dir" "$2/src" && chmod -R u+w "$2/src" || die "could not copy the source of $1 to $2/src"
}

need () { command -v "$1" > /dev/null 2>&1 || die "'$1' is not installed; it is needed to $2"; }

pid_alive () { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2> /dev/null; }

# http_ok METHOD URL: true when URL answers 2xx within 2 s.
http_ok () { curl -sf -o /dev/null --max-time 2 -X "$1" "$2"; }

# port_busy PORT: true when something accepts connections on 127.0.0.1:PORT.
port_busy () { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# wait_http METHOD URL TIMEOUT_S: waits for URL to answer while our process lives; dies loudly otherwise.
wait_http () {
  local method=$1 url=$2 timeout=$3 waited=0
  while ! http_ok "$method" "$url"; do
    pid_alive || { rm -f "$PIDFILE"; die "the process exited before $url answered"; }
    [ "$waited" -ge $((timeout * 4)) ] && die "no answer from $method $url after ${timeout} s (the process is still running, pid $(cat "$PIDFILE"))"
    sleep 0.25
    waited=$((waited + 1))
  done
}

# start_bg CMD...: starts CMD detached, stdout and stderr appended to $LOG, its pid in $PIDFILE.
start_bg () {
  echo "=== $(date -u +%FT%TZ) starting: $*" >> "$LOG"
  nohup setsid "$@" >> "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
}

# stop_pid: stops the process in $PIDFILE (TERM, then KILL after 15 s); fine when none runs.
stop_pid () {
  if ! pid_alive; then rm -f "$PIDFILE"; say "down (was not running)"; return 0; fi
  local pid; pid=$(cat "$PIDFILE")
  kill -TERM "$pid" 2> /dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2> /dev/null || { rm -f "$PIDFILE"; say "down (stopped pid $pid)"; return 0; }
    sleep 0.25
  done
  kill -KILL "$pid" 2> /dev/null || true
  rm -f "$PIDFILE"
  say "down (pid $pid did not stop on TERM within 15 s; killed)"
}

now () { date +%s.%N; }

# record LABEL START [rc]: appends "<time> <service> <label> <seconds since START>" to .services/timings.log.
record () {
  echo "$(date -u +%FT%TZ) $SERVICE $1 $(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }')${3:+ rc=$3}" >> "$SERVICES_ROOT/.services/timings.log"
}

# timed LABEL CMD...: runs CMD and records how long it took. Note that `set -e` does not
# apply inside CMD (it runs in a `||` list): CMD must check its own steps (… || die).
timed () {
  local label=$1; shift
  local start rc=0; start=$(now)
  "$@" || rc=$?
  record "$label" "$start" "$rc"
  return $rc
}

svc_main () {
  case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
  esac
}
