#!/usr/bin/env bash
# A Matrix homeserver for the integration suite: Synapse from PyPI (matrix-synapse, pinned)
# in a cached virtualenv, SQLite, server name `localhost`, one client listener on
# 127.0.0.1 (no federation listener, no outbound federation), open registration off,
# registration by shared secret (the secret is in .services/synapse/shared-secret), rate
# limits raised for bots. Usage: scripts/services/synapse.sh up|down|status
#
# Env: SYNAPSE_VERSION (1.163.2), SYNAPSE_PORT (8008), CONCLAVE_PYTHON (python3, ≥ 3.10),
# CONCLAVE_CACHE (~/.cache/conclave).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
svc_init synapse

SYNAPSE_VERSION=${SYNAPSE_VERSION:-1.163.2}
PORT=${SYNAPSE_PORT:-8008}
URL=http://127.0.0.1:$PORT
VENV=$CACHE/venv/synapse-$SYNAPSE_VERSION
PY=$VENV/bin/python
CONFIG=$STATE/homeserver.yaml

healthy () { http_ok GET "$URL/health"; }

build () { pip_venv "$VENV" "$CACHE/build/synapse-$SYNAPSE_VERSION.log" "matrix-synapse==$SYNAPSE_VERSION"; }

secret () {
  local file=$STATE/$1
  [ -s "$file" ] || { (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$file") || die "could not write $file"; }
  cat "$file"
}

# Rewritten on every `up` (ports may change); the secrets and the signing key persist.
configure () {
  # homeserver.yaml repeats the secrets (the shared one registers admins) and Synapse's database
  # holds every account's access token: none of it for other local users, old installs included.
  umask 077
  chmod 700 "$STATE"
  mkdir -p "$STATE/data/media_store"
  local shared macaroon form
  shared=$(secret shared-secret)
  macaroon=$(secret macaroon-secret)
  form=$(secret form-secret)
  local fast='{ per_second: 1000, burst_count: 10000 }'
  cat > "$STATE/log.config" << EOF
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
loggers:
  synapse.storage.SQL:
    level: WARNING
root:
  level: INFO
  handlers: [console]
disable_existing_loggers: false
EOF
  cat > "$CONFIG" << EOF
# Written by scripts/services/synapse.sh on every \`up\`; edit the script, not this file.
server_name: localhost
public_baseurl: $URL/
pid_file: $STATE/data/homeserver.pid
listeners:
  - port: $PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $STATE/data/homeserver.db
log_config: $STATE/log.config
media_store_path: $STATE/data/media_store
signing_key_path: $STATE/data/localhost.signing.key
registration_shared_secret: "$shared"
macaroon_secret_key: "$macaroon"
form_secret: "$form"
enable_registration: false
report_stats: false
enable_metrics: false
url_preview_enabled: false
# No federation: no federation listener, no key servers, and outbound federation to nobody.
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
# Bots send, join and log in far faster than people.
rc_message: $fast
rc_registration: $fast
rc_registration_token_validity: $fast
rc_login:
  address: $fast
  account: $fast
  failed_attempts: $fast
rc_joins:
  local: $fast
  remote: $fast
rc_joins_per_room: $fast
rc_invites:
  per_room: $fast
  per_user: $fast
  per_issuer: $fast
rc_admin_redaction: $fast
rc_key_requests: $fast
rc_3pid_validation: $fast
rc_third_party_invite: $fast
rc_media_create: $fast
rc_presence:
  per_user: $fast
rc_delayed_event_mgmt: $fast
rc_room_creation: $fast
rc_reports: $fast
rc_user_directory: $fast
rc_profile: $fast
EOF
  chmod 600 "$CONFIG"
  if [ ! -f "$STATE/data/localhost.signing.key" ]; then
    "$PY" -m synapse.app.homeserver -c "$CONFIG" --generate-keys >> "$LOG" 2>&1 || die "synapse --generate-keys failed"
  fi
}

up () {
  if healthy; then say "already up at $URL"; return 0; fi
  pid_alive && die "pid $(cat "$PIDFILE") runs but $URL/health does not answer; run '$0 down' first"
  port_busy "$PORT" && die "port $PORT is taken by another process that is not Synapse; set SYNAPSE_PORT"
  timed build with_lock "synapse-$SYNAPSE_VERSION" build
  configure
  local start; start=$(now)
  start_bg "$PY" -m synapse.app.homeserver -c "$CONFIG"
  wait_http GET "$URL/health" 120
  record start "$start"
  say "up at $URL (Synapse $SYNAPSE_VERSION, server name localhost, pid $(cat "$PIDFILE"), log $LOG)"
}

down () { stop_pid; }

status () { if healthy; then say "up at $URL"; else say "down"; return 1; fi; }

svc_main "$@"
