#!/usr/bin/env bash
# Fuzzes the service's HTTP API from its own OpenAPI document with schemathesis (issue 9): a fresh
# service on SQLite with an organisation, a key and an access token that may do everything (sign, read,
# keygen, admin, audit, approve), then `schemathesis run http://127.0.0.1:PORT/v1/openapi.json` with that
# bearer token. Fails on any finding of the checks (default: no 5xx, and answers that match the documented
# status codes, content types and response schemas).
#
#   backend/scripts/schemathesis.sh                         # ST_MAX_EXAMPLES=25 per operation
#   ST_MAX_EXAMPLES=200 backend/scripts/schemathesis.sh     # the long run
#   ST_CHECKS=not_a_server_error backend/scripts/schemathesis.sh
#
# schemathesis is installed with pip into a venv under $ST_VENV (default: a cache directory, reused).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
max_examples=${ST_MAX_EXAMPLES:-25}
checks=${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}
venv=${ST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptera-schemathesis}
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
backend=${BACKEND:-$target/release/cryptera-backend}
[ -n "${BACKEND:-}" ] || cargo build --release -q -p cryptera-backend

if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cryptera-schemathesis.XXXXXX")
server=""
cleanup() {
  [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
  [ -n "${ST_KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

unset CRYPTERA_DATABASE_URL
data=$work/data
"$backend" --data-dir "$data" init >/dev/null
"$backend" --data-dir "$data" org create --name acme >/dev/null
"$backend" --data-dir "$data" key create --org acme --label release-a --algorithm ecdsa_p256 \
  --environment development >/dev/null
token=$("$backend" --data-dir "$data" token create --org acme --name fuzz --operation sign --operation read \
  --operation keygen --operation admin --operation audit --operation approve --key-pattern '*' \
  --environment development --expires-in-days 1 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Limits high enough that the fuzzer meets the handlers, not only 429.
"$backend" --data-dir "$data" serve --listen "127.0.0.1:$port" --login-failure-delay-ms 1 \
  --credential-requests-per-minute 1000000 --organisation-requests-per-minute 1000000 \
  >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

# run_schemathesis ARGS...: one pass with the shared options; the status of the worst pass is kept.
# One worker: with two, hypothesis's threads call `ast.parse` at once, and CPython 3.11's AST
# recursion counter is not thread-safe ("SystemError: AST constructor recursion depth mismatch",
# a crash of the tool reported as a runtime error on a random operation).
status=0
run_schemathesis() {
  "$venv/bin/schemathesis" run "http://127.0.0.1:$port/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    --seed "${ST_SEED:-9}" \
    --workers 1 \
    --request-timeout 10 \
    --no-color \
    --generation-database none \
    "$@" || status=$?
}
# Revoking a token is fuzzed last: the fuzzer finds the token's own id (GET /v1/tokens) and revokes it,
# after which every other operation would only meet 401. The EST routes take DER (application/pkcs10),
# which schemathesis cannot generate; the `service_requests` cargo-fuzz target covers bodies instead.
run_schemathesis --exclude-path-regex '^(/v1/tokens/\{id\}|/\.well-known/est/.*)$' "$@"
run_schemathesis --include-path '/v1/tokens/{id}' "$@"
if grep -q "panicked" "$work/server.log"; then
  echo "schemathesis.sh: the service panicked:"; grep -A3 "panicked" "$work/server.log" | head -20
  status=1
fi
if ! kill -0 "$server" 2>/dev/null; then
  echo "schemathesis.sh: the service exited"; tail -20 "$work/server.log"; status=1
fi
exit "$status"
