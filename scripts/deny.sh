#!/usr/bin/env bash
# Supply-chain checks with cargo-deny against deny.toml: licences, bans (duplicates warn, banned crates
# fail) and sources must pass. Advisories (the RustSec database) run when the database can be fetched;
# where the network does not reach it the check says so and is skipped, rather than failing CI for a
# network reason. DENY_ADVISORIES=require makes a missing database a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
if ! command -v cargo-deny >/dev/null; then
  echo "deny: installing cargo-deny"
  cargo install cargo-deny --locked --quiet
fi
status=0
if cargo deny --log-level error check licenses bans sources; then
  echo "ok   cargo deny check licenses bans sources"
else
  echo "FAIL cargo deny check licenses bans sources"
  status=1
fi
if cargo deny --log-level error fetch db >/dev/null 2>"${TMPDIR:-/tmp}/deny-fetch.$$"; then
  if cargo deny --log-level error check advisories; then
    echo "ok   cargo deny check advisories"
  else
    echo "FAIL cargo deny check advisories"
    status=1
  fi
else
  reason=$(sed -n 's/.*\(Could not resolve host: [^ ]*\).*/\1/p' "${TMPDIR:-/tmp}/deny-fetch.$$" | head -1)
  if [ "${DENY_ADVISORIES:-}" = require ]; then
    echo "FAIL cargo deny check advisories: the RustSec advisory database could not be fetched (${reason:-see cargo deny fetch})"
    status=1
  else
    echo "skip cargo deny check advisories: the RustSec advisory database could not be fetched (${reason:-see cargo deny fetch}); licences, bans and sources were checked"
  fi
fi
rm -f "${TMPDIR:-/tmp}/deny-fetch.$$"
exit $status
