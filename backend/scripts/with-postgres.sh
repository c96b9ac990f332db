#!/usr/bin/env bash
# Runs COMMAND with a temporary PostgreSQL server: a new cluster in a temp directory, listening on
# 127.0.0.1 on a free port (its unix socket in the temp directory too), a random password for the
# superuser `cryptera`, and CRYPTERA_TEST_POSTGRES=postgres://cryptera:PASSWORD@127.0.0.1:PORT/postgres
# exported for the command. The server is stopped and its files removed afterwards, whatever happens.
#
#   backend/scripts/with-postgres.sh cargo test --release -p cryptera-backend
#
# Needs Debian's `postgresql` package (scripts/install-deps.sh installs it). As root, the server runs as
# the `postgres` user, since PostgreSQL refuses to run as root.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres.sh: no PostgreSQL server found in /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cryptera-pg.XXXXXX")
chmod 700 "$work"
owner=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || owner=nobody
  chown "$owner" "$work"
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

started=""
cleanup() {
  if [ -n "$started" ]; then
    as_owner "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
printf '%s\n' "$password" >"$work/password"
chmod 600 "$work/password"
[ "$(id -u)" -ne 0 ] || chown "$owner" "$work/password"
as_owner "$bindir/initdb" -D "$work/data" -U cryptera --pwfile="$work/password" -A scram-sha-256 \
  -E UTF8 --locale=C --no-sync >"$work/initdb.log" 2>&1 || {
  cat "$work/initdb.log" >&2
  exit 1
}
rm -f "$work/password"

# A random free port; a port taken between the check and the start is retried with another.
for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    continue
  fi
  if as_owner "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$work -c max_connections=200" \
    >/dev/null 2>&1; then
    started=yes
    break
  fi
done
if [ -z "$started" ]; then
  echo "with-postgres.sh: the server did not start:" >&2
  cat "$work/server.log" >&2 || true
  exit 1
fi

export CRYPTERA_TEST_POSTGRES="postgres://cryptera:$password@127.0.0.1:$port/postgres"
echo "with-postgres.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
status=0
"$@" || status=$?
exit "$status"
