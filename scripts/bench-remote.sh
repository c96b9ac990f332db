#!/usr/bin/env bash
# Remote signing through the module versus the service's REST API called directly, 1 and 8 threads:
# a fresh service (SQLite, audit log on, rate limits raised out of the way) on 127.0.0.1 with an
# RSA-2048, a P-256 and an Ed25519 key. Arguments go to cryptera-bench-remote (e.g. --seconds 3).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cargo build --release --quiet -p cryptera-pkcs11 -p cryptera-bench -p cryptera-backend
target=${CARGO_TARGET_DIR:-target}
backend=${BACKEND:-$target/release/cryptera-backend}
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
export CRYPTERA_DATA_DIR=$work/service
"$backend" init >/dev/null
"$backend" org create --name acme >/dev/null
for key in bench-rsa:rsa2048 bench-p256:ecdsa_p256 bench-ed:ed25519; do
  "$backend" key create --org acme --label "${key%%:*}" --algorithm "${key##*:}" --environment development >/dev/null
done
token=$("$backend" token create --org acme --name bench --operation sign --operation read --key-pattern 'bench-*' \
  --environment development --expires-in-days 1 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$backend" serve --listen "127.0.0.1:$port" --credential-requests-per-minute 100000000 \
  --organisation-requests-per-minute 100000000 >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export CRYPTERA_PKCS11_CONFIG=$work/module.toml
printf 'store_dir = "%s"\n[[remote]]\nslot = 10\nurl = "http://127.0.0.1:%s"\nquiet = true\n' "$work/store" "$port" >"$CRYPTERA_PKCS11_CONFIG"
"$target/release/cryptera-bench-remote" --module "$target/release/libcryptera_pkcs11.so" \
  --url "http://127.0.0.1:$port" --token "$token" "$@" bench-rsa bench-p256 bench-ed
