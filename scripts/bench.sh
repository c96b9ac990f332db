#!/usr/bin/env bash
# Side-by-side benchmark: this module, SoftHSM2 and the raw aws-lc-rs engine in one run.
# Arguments go to cryptera-bench (e.g. --rounds 3 --seconds 2 --only "Ed25519").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq softhsm2 >/dev/null
fi
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cargo build --release --quiet -p cryptera-pkcs11 -p cryptera-bench
target/release/cryptera-bench "$@" target/release/libcryptera_pkcs11.so /usr/lib/softhsm/libsofthsm2.so
