# Shared by the remote-token scripts (sourced after lib.sh): the real Cryptera service on 127.0.0.1 with
# a fresh database, an organisation "acme", its keys and an access token, and the module's config with
# the remote slot 10.
# shellcheck shell=bash
backend=${BACKEND:-$root/target/release/cryptera-backend}
[ -x "$backend" ] || cargo build --release -q -p cryptera-backend
export CRYPTERA_DATA_DIR=$work/service
service_port=""
server=""
scheme=http
serve_args=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# service_setup KEY:ALGORITHM...: a new service database with these development keys in "acme", and
# $token, an access token that may sign, read, make keys and attach certificates to release-* keys.
service_setup() {
  "$backend" init >/dev/null && "$backend" org create --name acme >/dev/null || return 1
  local key
  for key in "$@"; do
    "$backend" key create --org acme --label "${key%%:*}" --algorithm "${key##*:}" --environment development >/dev/null || return 1
  done
  token=$("$backend" token create --org acme --name ci --operation sign --operation read --operation keygen \
    --operation admin --key-pattern 'release-*' --environment development --expires-in-days 1)
}

# service_start [SERVE ARGS...]: serves on $service_port (a free one the first time, the same one after), and
# waits until it answers.
service_start() {
  [ -n "$service_port" ] || service_port=$(free_port)
  [ $# -eq 0 ] || serve_args=("$@")
  "$backend" serve --listen "127.0.0.1:$service_port" "${serve_args[@]+"${serve_args[@]}"}" >>"$work/server.log" 2>&1 &
  server=$!
  local i
  for i in $(seq 100); do
    curl -sfk "$scheme://127.0.0.1:$service_port/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the service did not start"; tail -5 "$work/server.log"; return 1
}
service_stop() {
  [ -z "$server" ] && return 0
  kill -CONT "$server" 2>/dev/null; kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; server=""
}
on_exit service_stop

# remote_config [EXTRA TOML LINES]: the module's config with slot 10 on the service (per-request
# timeout: $remote_timeout_ms, default 3000).
remote_config() {
  export CRYPTERA_PKCS11_CONFIG=$work/module.toml
  printf 'store_dir = "%s"\n[[remote]]\nslot = 10\nurl = "%s://127.0.0.1:%s"\nlabel = "acme remote"\ntimeout_ms = %s\napproval_wait_s = 40\n%s\n' \
    "$work/store" "$scheme" "$service_port" "${remote_timeout_ms:-3000}" "${1:-}" >"$CRYPTERA_PKCS11_CONFIG"
}

rtool() { pkcs11-tool --module "$module" --slot 10 "$@"; }
ruser() { rtool --login --pin "$token" "$@"; }
api() { curl -sf "$scheme://127.0.0.1:$service_port$1" -H 'content-type: application/json' "${@:2}"; }

# key_id LABEL: the CKA_ID (hex) pkcs11-tool shows for a remote key.
key_id() {
  ruser -O 2>/dev/null | awk -v want="$1" '$1 == "label:" && $2 == want {f=1} f && $1 == "ID:" {print $2; exit}'
}
# service_key LABEL: the service's key id.
service_key() {
  api /v1/keys -H "authorization: Bearer $token" |
    python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin)["keys"] if k["label"] == sys.argv[1]][0])' "$1"
}
# signatures KEY_ID: how many completed signing requests the service holds for a key.
signatures() {
  api "/v1/signing-requests?status=completed" -H "authorization: Bearer $token" |
    python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["requests"] if r["key_id"] == sys.argv[1]))' "$1"
}

totp() { # base32 secret, time offset in steps
  python3 -c 'import base64, hmac, struct, sys, time
secret = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(secret, struct.pack(">Q", step), "sha1").digest()
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))' "$1" "$2"
}
approver_password='approver password 1234'
# enrol_approver USERNAME: adds an approver with TOTP; prints the TOTP secret.
enrol_approver() {
  local session secret
  echo "$approver_password" | "$backend" user add --org acme --username "$1" --role approver >/dev/null 2>&1 || return 1
  session=$(api /v1/login -d "{\"organisation\":\"acme\",\"username\":\"$1\",\"password\":\"$approver_password\",\"environment\":\"development\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])') || return 1
  secret=$(api /v1/users/me/totp -X POST -H "authorization: Bearer $session" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_base32"])') || return 1
  api /v1/users/me/totp/confirm -H "authorization: Bearer $session" -d "{\"code\":\"$(totp "$secret" 0)\"}" >/dev/null || return 1
  echo "$secret"
}
# pending_request: waits for a pending signing request and prints its id.
pending_request() {
  local request="" i
  for i in $(seq 150); do
    request=$(api "/v1/signing-requests?status=pending" -H "authorization: Bearer $token" |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(r[0]["id"] if r else "")' 2>/dev/null)
    [ -n "$request" ] && { echo "$request"; return 0; }
    sleep 0.2
  done
  return 1
}
