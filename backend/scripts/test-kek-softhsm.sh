#!/usr/bin/env bash
# The service's PKCS#11 KEK test (backend/tests/pkcs11_kek.rs) again with SoftHSM2 2.6 holding the KEK
# instead of the project's own module: production keys sealed in a third-party token, a restart, a
# wrong PIN. It runs the test executable of the workspace's release build (`cargo test --release
# --workspace`, which scripts/test.sh runs first), in a SoftHSM2 configuration of its own.
set -euo pipefail
cd "$(dirname "$0")/../.."
softhsm=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ ! -e "$softhsm" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq softhsm2 >/dev/null
fi
executable=$(
  cargo test --release --workspace --no-run --message-format=json 2>/dev/null |
    python3 backend/scripts/test-executables.py --target pkcs11_kek
)
if [ -z "$executable" ]; then
  echo "test-kek-softhsm.sh: the pkcs11_kek test executable was not found (did the build fail?)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >"$work/softhsm2.conf"
echo "     Running $(basename "$executable") with SoftHSM2 ($softhsm)"
cd backend
SOFTHSM2_CONF=$work/softhsm2.conf CRYPTERA_PKCS11_MODULE=$softhsm "$executable"
