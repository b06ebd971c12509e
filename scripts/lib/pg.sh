# Shared by scripts/test and scripts/bench: a throwaway PostgreSQL server.
#   start_throwaway_pg DBNAME   sets PG_URL; the server and its data go away when the script exits.
# Installs Debian's postgresql package where the server binaries are missing. PostgreSQL refuses to
# run as root, so as root the server runs as user postgres. Durability is off: the data is thrown away.

start_throwaway_pg() {
local dbname=$1
find_pg_bin() {
  local dir
  for dir in "${PG_BIN:-}" /usr/lib/postgresql/15/bin; do
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
  done
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
  fi
  # Any other installed major version, newest first.
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -rn); do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! pg_bin=$(find_pg_bin); then
  say "installing PostgreSQL (Debian package postgresql)"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "PostgreSQL is missing and I am not root: apt-get install postgresql"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(find_pg_bin) || die "PostgreSQL installed but initdb/pg_ctl not found"
fi

# PostgreSQL refuses to run as root: as root, run the server as user postgres.
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 ||
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  as_pg() { (cd "$pg_root" && runuser -u postgres -- "$@"); }
  pg_root=$(mktemp -d /tmp/appraisal-pg.XXXXXX)
  chown postgres: "$pg_root"
else
  as_pg() { (cd "$pg_root" && "$@"); }
  pg_root=$(mktemp -d "${TMPDIR:-/tmp}/appraisal-pg.XXXXXX")
fi
pg_data=$pg_root/data
pg_log=$pg_root/server.log

stop_server() {
  [[ -f $pg_data/postmaster.pid ]] || return 0
  local pid i
  pid=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null || true)
  if ! as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
    # pg_ctl could not stop it: kill the postmaster; its children follow it.
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
  fi
  # The pid file goes just before the postmaster exits: wait for the process.
  # Once a zombie it is gone for us (pid 1, not us, reaps it).
  for ((i = 0; i < 50; i++)); do
    [[ -n $pid && -r /proc/$pid/stat ]] || break
    [[ $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) == Z* ]] && break
    sleep 0.1
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  rm -rf "$pg_root"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

initdb_with_locale() {
  as_pg "$pg_bin/initdb" -D "$pg_data" --auth=trust -U postgres --encoding=UTF8 \
    --locale="$1" --no-sync >>"$pg_root/initdb.log" 2>&1
}
if ! initdb_with_locale C.UTF-8; then
  rm -rf "$pg_data"
  initdb_with_locale C || { cat "$pg_root/initdb.log" >&2; die "initdb failed"; }
fi

# Throwaway data: durability settings off for speed.
cat >>"$pg_data/postgresql.conf" <<EOF

# scripts/test
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_root'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

free_port() {
  "$venv/bin/python" -c '
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

pg_version=$("$pg_bin/postgres" --version | awk '{print $3}')
# The port is free when we look but another process could take it before the
# server binds it; try a few ports.
for attempt in 1 2 3; do
  port=$(free_port)
  say "starting PostgreSQL $pg_version on port $port"
  if as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_log" -o "-p $port" -w -t 60 start >/dev/null; then
    break
  fi
  stop_server
  [[ $attempt -eq 3 ]] && { tail -n 20 "$pg_log" >&2 || true; die "PostgreSQL did not start"; }
done

"$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$dbname"
PG_URL="postgresql://postgres@127.0.0.1:$port/$dbname"

}
