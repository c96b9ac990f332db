#!/usr/bin/env bash
# Runs the service's tests (unit and integration) again on PostgreSQL, under a throwaway server
# (with-postgres.sh; each test makes its own database). It runs the test executables of the workspace's
# release build (`cargo test --release --workspace`, which scripts/test.sh runs first) rather than
# `cargo test -p cryptera-backend`, whose different feature set would rebuild half the dependencies.
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t executables < <(
  cargo test --release --workspace --no-run --message-format=json 2>/dev/null |
    python3 backend/scripts/test-executables.py --package cryptera-backend
)
if [ ${#executables[@]} -eq 0 ]; then
  echo "test-postgres.sh: no cryptera-backend test executables found (did the build fail?)" >&2
  exit 1
fi
# Cargo runs a package's tests from its directory; so do these.
exec backend/scripts/with-postgres.sh bash -c '
  cd backend
  status=0
  for executable in "$@"; do
    echo "     Running $(basename "$executable") on PostgreSQL"
    "$executable" || status=1
  done
  exit "$status"
' test-postgres "${executables[@]}"
