#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests that load the built module, the service's tests,
# the real-client scripts (pkcs11-tool, OpenSSL engine, code signing, GnuTLS, p11-kit, OpenSSH, the Python
# and Rust examples, the .deb) and the C example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
cargo build --release -p cryptera-pkcs11
cargo test --release --workspace
# The service binary that build made: the scripts below would otherwise build it again on their own with
# cryptera-backend's feature set alone (~100 s).
export BACKEND=${CARGO_TARGET_DIR:-$PWD/target}/release/cryptera-backend
# The service's tests again, on PostgreSQL (a temporary server on 127.0.0.1; each test its own database).
backend/scripts/test-postgres.sh
# The service's PKCS#11 KEK test again with SoftHSM2 holding the KEK (installs softhsm2; ~1 s).
backend/scripts/test-kek-softhsm.sh
# The service under load and faults (two processes, SIGKILL, PostgreSQL restart; ~75 s) and its API fuzzed
# from the OpenAPI document (schemathesis from PyPI, ~40 s).
backend/scripts/service-faults.sh
# The committed OpenAPI document is what backend/openapi.py generates (no hand edits that drift).
python3 backend/openapi.py --check
backend/scripts/schemathesis.sh
bash pkcs11-tests/scripts/clients.sh
bash pkcs11-tests/scripts/audit.sh
bash pkcs11-tests/scripts/c-example.sh
bash pkcs11-tests/scripts/codesign.sh
bash pkcs11-tests/scripts/gnutls-p11kit.sh
bash pkcs11-tests/scripts/openssh.sh
bash pkcs11-tests/scripts/valgrind.sh
bash pkcs11-tests/scripts/examples.sh
bash pkcs11-tests/scripts/deb.sh
bash pkcs11-tests/scripts/crash.sh
bash pkcs11-tests/scripts/stress.sh
bash pkcs11-tests/scripts/remote.sh
bash pkcs11-tests/scripts/remote-clients.sh
bash pkcs11-tests/scripts/remote-faults.sh
bash pkcs11-tests/scripts/devices.sh
bash pkcs11-tests/scripts/enroll.sh
# Supply chain (cargo-deny: licences, bans, sources; advisories when the database is reachable) and the
# fuzz smoke run (each cargo-fuzz target 20 s from its committed corpus); see docs/ROBUSTNESS.md.
# On a fresh machine these cost more than the suite's 20-minute budget (installing cargo-deny ~5 min,
# the sanitizer build of every dependency for cargo-fuzz far more), so they run where the tools and the
# fuzz build cache are already there, or when asked: CRYPTERA_SUPPLY_CHAIN=1, CRYPTERA_FUZZ_SMOKE=1 (=0: never).
if [ "${CRYPTERA_SUPPLY_CHAIN:-}" = 1 ] || { [ "${CRYPTERA_SUPPLY_CHAIN:-}" != 0 ] && command -v cargo-deny >/dev/null; }; then
  bash scripts/deny.sh
else
  echo "skip scripts/deny.sh (cargo-deny not installed; CRYPTERA_SUPPLY_CHAIN=1 installs and runs it)"
fi
if [ "${CRYPTERA_FUZZ_SMOKE:-}" = 1 ] || { [ "${CRYPTERA_FUZZ_SMOKE:-}" != 0 ] && command -v cargo-fuzz >/dev/null && [ -d "${FUZZ_TARGET_DIR:-$HOME/.cache/cryptera-pkcs11/fuzz-target}" ]; }; then
  bash scripts/fuzz-smoke.sh
else
  echo "skip scripts/fuzz-smoke.sh (no fuzz build cache; CRYPTERA_FUZZ_SMOKE=1 builds and runs it)"
fi
