#!/usr/bin/env bash
# The service under load and faults (issue 9): two `cryptera-backend serve` processes on one database,
# first SQLite, then PostgreSQL (through backend/scripts/with-postgres.sh), signed through by 16 client
# threads (backend/scripts/service-load.py) above the key's and the token's rate limits, with unique
# idempotency keys and deliberate repeats. Meanwhile one service process is killed with SIGKILL mid-run
# and restarted, and on PostgreSQL the database server is restarted too (on SQLite, the other process is
# killed instead). Afterwards: every 200 has exactly one signing record with that signature (verified
# against the key's public key), no idempotency key or digest has two records, every completed request
# has exactly one audit record, `cryptera-backend audit verify` passes and every 429 carried Retry-After.
#
#   backend/scripts/service-faults.sh            # both databases, FAULTS_SECONDS (default 30) of load each
#   FAULTS_SECONDS=300 FAULTS_EVERY=20 backend/scripts/service-faults.sh   # the long run: a fault every 20 s
#   FAULTS_DATABASES=sqlite backend/scripts/service-faults.sh
#
# Needs python3 with `cryptography`, curl, and Debian's postgresql for the PostgreSQL half.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=$root/backend/scripts
seconds=${FAULTS_SECONDS:-30}
threads=${FAULTS_THREADS:-16}
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
backend=${BACKEND:-$target/release/cryptera-backend}

# Inside with-postgres.sh: run the PostgreSQL half only.
if [ "${1:-}" = "--inside-postgres" ]; then
  mode=postgres
else
  mode=all
  if [ -z "${BACKEND:-}" ]; then
    cargo build --release -q -p cryptera-backend
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cryptera-faults.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]+"${pids[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${FAULTS_KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# serve N DATA_DIR PORT: starts service process N (its pid in serve_pid[N]) and waits until it answers.
declare -A serve_pid
serve() {
  "$backend" --data-dir "$2" serve --listen "127.0.0.1:$3" --credential-requests-per-minute 1200 \
    --login-failure-delay-ms 10 >>"$work/serve-$1.log" 2>&1 &
  serve_pid[$1]=$!
  pids+=("$!")
  local i
  for i in $(seq 100); do
    curl -sf "http://127.0.0.1:$3/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "service process $1 did not start"; tail -5 "$work/serve-$1.log"; return 1
}

# kill_and_restart N DATA_DIR PORT: SIGKILL (in the middle of whatever it is doing), then start again.
kills=0
kill_and_restart() {
  kill -KILL "${serve_pid[$1]}"
  wait "${serve_pid[$1]}" 2>/dev/null || true
  kills=$((kills + 1))
  echo "  $(date +%T) killed service process $1 (SIGKILL)"
  sleep 1
  serve "$1" "$2" "$3"
  echo "  $(date +%T) service process $1 serving again"
}

pg_restarts=0
pg_data= pg_opts=
# pg_control stop|start|restart: pg_ctl on the test cluster, as its owner.
pg_control() {
  local bindir owner
  [ -n "$pg_data" ] || pg_data=$(psql "$CRYPTERA_TEST_POSTGRES" -X -At -c 'SHOW data_directory')
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  owner=$(stat -c %U "$pg_data")
  local pg_ctl=("$bindir/pg_ctl" -D "$pg_data" -m fast -w -t 60 "$1")
  # `restart` reuses the server's options (port, sockets); `stop` then `start` must be given them.
  if [ "$1" = stop ]; then pg_opts=$(cut -d' ' -f2- "$pg_data/postmaster.opts"); fi
  if [ "$1" = start ]; then pg_ctl+=(-l "$pg_data/restarted.log" -o "$pg_opts"); fi
  if [ "$(id -u)" -eq 0 ] && [ "$owner" != root ]; then
    runuser -u "$owner" -- "${pg_ctl[@]}" >/dev/null
  else
    "${pg_ctl[@]}" >/dev/null
  fi
}

restart_postgres() {
  pg_control restart
  pg_restarts=$((pg_restarts + 1))
  echo "  $(date +%T) PostgreSQL restarted (pg_ctl restart -m fast)"
}

# database_down_check API TOKEN KEY: with PostgreSQL stopped, a read and a signing request are answered
# 503 `unavailable` (not 500: nothing is wrong with the request, it may succeed in a moment); started
# again, the same requests succeed.
database_down_check() {
  local api=$1 token=$2 key=$3 failed=0 code
  local sign
  sign="{\"mechanism\":\"ecdsa_sha256\",\"digest\":\"$(head -c 32 /dev/zero | base64)\",\"idempotency_key\":\"down-check-1\"}"
  pg_control stop
  code=$(curl -s -o "$work/down-read.json" -w '%{http_code}' "$api/v1/keys/$key" -H "authorization: Bearer $token")
  if [ "$code" != 503 ] || ! grep -q '"unavailable"' "$work/down-read.json"; then
    echo "service-faults: database stopped, GET key answered $code: $(cat "$work/down-read.json")"; failed=1
  fi
  code=$(curl -s -o "$work/down-sign.json" -w '%{http_code}' "$api/v1/keys/$key/sign" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$sign")
  if [ "$code" != 503 ] || ! grep -q '"unavailable"' "$work/down-sign.json"; then
    echo "service-faults: database stopped, sign answered $code: $(cat "$work/down-sign.json")"; failed=1
  fi
  pg_control start
  code=$(curl -s -o /dev/null -w '%{http_code}' "$api/v1/keys/$key" -H "authorization: Bearer $token")
  [ "$code" = 200 ] || { echo "service-faults: database started again, GET key answered $code"; failed=1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$api/v1/keys/$key/sign" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d "$sign")
  [ "$code" = 200 ] || { echo "service-faults: database started again, sign answered $code"; failed=1; }
  [ "$failed" = 0 ] && echo "service-faults (postgres): database stopped → 503 unavailable; started → 200"
  return "$failed"
}

# scenario NAME [DATABASE_URL]: the whole run on one database; fails on any finding.
scenario() {
  local name=$1 url=${2:-} dir=$work/$1
  local first="$dir/one" second="$dir/two"
  kills=0 pg_restarts=0
  mkdir -p "$dir"
  if [ -n "$url" ]; then export CRYPTERA_DATABASE_URL=$url; else unset CRYPTERA_DATABASE_URL; fi
  "$backend" --data-dir "$first" init >/dev/null
  "$backend" --data-dir "$first" org create --name acme >/dev/null
  local token
  token=$("$backend" --data-dir "$first" token create --org acme --name load --operation sign --operation read \
    --operation keygen --operation admin --operation audit --key-pattern '*' --environment development \
    --expires-in-days 1 2>/dev/null)
  # On PostgreSQL a second process uses a copy of the data directory (same master key); on SQLite the
  # same directory, so the same database file.
  if [ -n "$url" ]; then cp -a "$first" "$second"; else second=$first; fi
  local port1 port2
  port1=$(free_port) port2=$(free_port)
  while [ "$port2" = "$port1" ]; do port2=$(free_port); done
  serve 1 "$first" "$port1"
  serve 2 "$second" "$port2"
  local api="http://127.0.0.1:$port1"
  local key key_id public_key gated
  key=$(curl -sf "$api/v1/keys" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"label":"load","algorithm":"ecdsa_p256","policy":{"rate_limit_per_minute":600}}')
  key_id=$(json_field id <<<"$key")
  public_key=$(json_field public_key <<<"$key")
  gated=$(curl -sf "$api/v1/keys" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"label":"gated","algorithm":"ecdsa_p256","policy":{"approvals_required":1}}' | json_field id)

  echo "service-faults ($name): $threads clients for ${seconds}s on two processes, key limit 600/min, token limit 1200/min"
  python3 "$here/service-load.py" drive --url "http://127.0.0.1:$port1" --url "http://127.0.0.1:$port2" \
    --token "$token" --key "$key_id" --public-key "$public_key" --approval-key "$gated" \
    --threads "$threads" --seconds "$seconds" --out "$dir/results.json" &
  local driver=$!
  pids+=("$driver")
  # A fault every FAULTS_EVERY seconds while the load runs, in turn: SIGKILL of process 1, then PostgreSQL
  # restarted (on SQLite: SIGKILL of process 2).
  local every=${FAULTS_EVERY:-$((seconds * 3 / 10))} started=$SECONDS turn=0
  while [ $((SECONDS - started + every)) -lt "$seconds" ]; do
    sleep "$every"
    turn=$((turn + 1))
    if [ $((turn % 2)) -eq 1 ]; then
      kill_and_restart 1 "$first" "$port1"
    elif [ -n "$url" ]; then
      restart_postgres
    else
      kill_and_restart 2 "$second" "$port2"
    fi
  done
  local status=0
  wait "$driver" || status=1

  "$backend" --data-dir "$first" audit verify >"$dir/verify.log" 2>&1 || {
    echo "service-faults ($name): audit verify FAILED"; cat "$dir/verify.log"; status=1
  }
  local database=${url:-$first/cryptera.db}
  python3 "$here/service-load.py" check --results "$dir/results.json" --database "$database" || status=1
  python3 - "$dir/results.json" "$name" "$kills" "$pg_restarts" <<'EOF'
import json, sys
counts = json.load(open(sys.argv[1]))["counts"]
five = sum(v for k, v in counts.items() if k.startswith("status_5"))
print(f"service-faults ({sys.argv[2]}): requests {counts.get('requests', 0)}, 200 {counts.get('status_200', 0)}, "
      f"202 {counts.get('status_202', 0)}, 429 {counts.get('status_429', 0)}, 5xx {five} (503 {counts.get('status_503', 0)}, 500 {counts.get('status_500', 0)}), "
      f"no answer {counts.get('connection_errors', 0)}, retries {counts.get('retries', 0)}, "
      f"deliberate repeats {counts.get('deliberate_repeats', 0)}, 429 without Retry-After "
      f"{counts.get('429_without_retry_after', 0)}, kills {sys.argv[3]}, database restarts {sys.argv[4]}")
EOF
  if [ -n "$url" ]; then database_down_check "http://127.0.0.1:$port1" "$token" "$key_id" || status=1; fi
  local n
  for n in 1 2; do kill "${serve_pid[$n]}" 2>/dev/null || true; wait "${serve_pid[$n]}" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "service-faults ($name): FAILED; service logs:"
    grep -hv "INFO" "$work"/serve-*.log | tail -n 20 || true
    return 1
  fi
  echo "service-faults ($name): passed"
}

if [ "$mode" = postgres ]; then
  psql=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)
  export PSQL=${psql:-psql}
  psql() { "$PSQL" "$@"; }
  psql "$CRYPTERA_TEST_POSTGRES" -X -q -c 'CREATE DATABASE faults'
  scenario postgres "${CRYPTERA_TEST_POSTGRES%/*}/faults"
  exit 0
fi

databases=${FAULTS_DATABASES:-sqlite postgres}
for database in $databases; do
  case $database in
    sqlite) scenario sqlite ;;
    postgres) BACKEND=$backend "$here/with-postgres.sh" "$0" --inside-postgres ;;
    *) echo "unknown database $database" >&2; exit 2 ;;
  esac
done
