# shellcheck shell=bash
# A throwaway PostgreSQL server for running custmetrics-generated SQL (sourced, not run):
#
#   source scripts/engines/postgres.sh
#   pg_start                                   # exports PGHOST PGPORT PGUSER PGDATABASE
#   pg_load_csv transactions testdata/demo/transactions.csv
#   pg_run_blocks stage1.sql out/              # out/NAME.csv per `-- custmetrics: NAME` block
#   pg_stop                                    # also run at exit (cm_on_exit), so optional
#
# Call these from the main shell, not inside $(...): the server's state lives in shell variables.
# Every function fails (non-zero, message on stderr) rather than skip anything; with `set -e` the
# calling script stops there.
#
# Environment: PG_BIN (directory of initdb, pg_ctl, postgres, psql, pg_isready; default: found or
# installed), PG_PORT (default: a free port), CM_PG_OS_USER (the server's OS user when run as
# root, default cmpg), CM_PYTHON (default python3).

set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CM_PG_OS_USER="${CM_PG_OS_USER:-cmpg}"
CM_PG_DIR=""
CM_PG_EXIT_HOOK=""
CM_PG_AS=() # prefix that runs a command as the server's OS user (empty unless we are root)

pg_debian_bin() { # the newest /usr/lib/postgresql/N/bin, or nothing
  local dirs=(/usr/lib/postgresql/*/bin)
  [ -d "${dirs[0]}" ] || return 0
  printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1
}

# Server binaries: an explicit PG_BIN, else the real directory behind `initdb` on PATH or
# /usr/local/bin (symlinks into /usr/lib/postgresql/N/bin here), else Debian's layout, else
# install Debian's package. /usr/bin/psql on Debian is a wrapper that picks a cluster from
# /etc/postgresql; using psql from the same bin directory avoids it.
pg_find_bin() {
  local dir="" initdb
  if [ -n "${PG_BIN:-}" ]; then
    dir="$PG_BIN"
  elif initdb="$(PATH="$PATH:/usr/local/bin" command -v initdb)"; then
    dir="$(dirname "$(readlink -f "$initdb")")"
  else
    dir="$(pg_debian_bin)"
  fi
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    [ "$(id -u)" = 0 ] || cm_die "PostgreSQL not found (set PG_BIN) and not root to install it" || return 1
    echo "PostgreSQL not found: apt-get install postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || cm_die "apt-get update failed" || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || cm_die "apt-get install postgresql failed" || return 1
    dir="$(pg_debian_bin)"
  fi
  local tool
  for tool in initdb pg_ctl postgres psql pg_isready; do
    [ -x "$dir/$tool" ] || cm_die "PostgreSQL: no $tool in ${dir:-(no bin directory)}" || return 1
  done
  PG_BIN="$dir"
}

# initdb refuses to run as root, so as root the server runs as a system user of its own.
pg_prepare_os_user() {
  CM_PG_AS=()
  [ "$(id -u)" = 0 ] || return 0
  if ! id -u "$CM_PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$CM_PG_OS_USER" ||
      cm_die "could not create the system user $CM_PG_OS_USER for PostgreSQL" || return 1
  fi
  CM_PG_AS=(runuser -u "$CM_PG_OS_USER" --)
}

pg_as() { # run a command as the server's OS user
  ${CM_PG_AS[@]+"${CM_PG_AS[@]}"} "$@"
}

pg_start() {
  [ -z "$CM_PG_DIR" ] || cm_die "pg_start: already running (PGPORT=$PGPORT)" || return 1
  local started=$SECONDS
  pg_find_bin || return 1
  pg_prepare_os_user || return 1
  CM_PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/custmetrics-pg.XXXXXX")"
  # Registered before anything can fail, so that a half-started server is stopped too.
  if [ -z "$CM_PG_EXIT_HOOK" ]; then
    cm_on_exit pg_stop
    CM_PG_EXIT_HOOK=1
  fi
  if [ "${#CM_PG_AS[@]}" -gt 0 ]; then
    chown "$CM_PG_OS_USER" "$CM_PG_DIR" || return 1
    # mktemp's parent may be private to root (TMPDIR under /root): say so, not "permission denied".
    pg_as test -w "$CM_PG_DIR" ||
      cm_die "$CM_PG_OS_USER cannot write to $CM_PG_DIR (is ${TMPDIR:-/tmp} traversable by others?)" || return 1
  fi
  local port
  port="${PG_PORT:-$(cm_free_port)}" || return 1
  local data="$CM_PG_DIR/data" log="$CM_PG_DIR/server.log"

  # C locale and UTF-8: byte-order text comparison and no dependence on installed locales.
  if ! pg_as "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    >"$CM_PG_DIR/initdb.log" 2>&1; then
    cat "$CM_PG_DIR/initdb.log" >&2
    cm_die "initdb failed" || return 1
  fi
  # Durability is pointless for a throwaway server (fsync etc. off). The date style, time zone
  # and messages are fixed so that exported CSVs and errors do not depend on the machine.
  pg_as tee -a "$data/postgresql.conf" >/dev/null <<EOF

# custmetrics scripts/engines/postgres.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CM_PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
datestyle = 'iso, ymd'
timezone = 'UTC'
lc_messages = 'C'
EOF
  # pg_ctl -w waits for the postmaster to report ready and notices when it dies early (a port
  # taken in the meantime, a bad setting); pg_isready then checks what psql will see: TCP on
  # 127.0.0.1. Both share the one 30 s budget.
  if ! pg_as "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 30 start >/dev/null; then
    echo "--- PostgreSQL server log ($log):" >&2
    cat "$log" >&2 2>/dev/null || true
    cm_die "PostgreSQL did not start on port $port within 30 s" || return 1
  fi
  local deadline=$((started + 30))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "--- PostgreSQL server log ($log):" >&2
      cat "$log" >&2 2>/dev/null || true
      cm_die "PostgreSQL started but pg_isready did not see it on 127.0.0.1:$port within 30 s" || return 1
    fi
    sleep 0.2
  done

  # Client settings from the caller's environment would change what the exports look like.
  unset PGOPTIONS PGDATESTYLE PGTZ PGSERVICE PGSERVICEFILE PGPASSWORD PGPASSFILE PGSSLMODE
  export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE=postgres PGCLIENTENCODING=UTF8
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$port in $((SECONDS - started)) s ($CM_PG_DIR)" >&2
}

# Stops the server and deletes its directory. Safe to call twice, or when pg_start failed
# halfway (it is the exit hook).
pg_stop() {
  [ -n "$CM_PG_DIR" ] || return 0
  local dir="$CM_PG_DIR" status=0 pid
  if [ -f "$dir/data/postmaster.pid" ]; then
    if ! pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null; then
      pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
      echo "warning: pg_ctl stop failed; killing postmaster ${pid:-?}" >&2
      [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
      status=1
    fi
  fi
  rm -rf "$dir" || status=1
  CM_PG_DIR=""
  unset PGHOST PGPORT PGUSER PGDATABASE
  return "$status"
}

pg_psql() { # psql on the running server: no ~/.psqlrc, stop at the first error
  [ -n "$CM_PG_DIR" ] || cm_die "PostgreSQL is not running (pg_start first)" || return 1
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# pg_load_csv TABLE CSVFILE: (re)creates TABLE with one text column per header field, named
# exactly as in the header, and loads the rows. Text, not inferred types, because that is what a
# warehouse landing table of a raw export holds: the SQL under test must do its own parsing.
# Unquoted empty fields arrive as NULL (CSV format's default), quoted ones ("") as ''.
pg_load_csv() {
  [ "$#" -eq 2 ] || cm_die "usage: pg_load_csv TABLE CSVFILE" || return 1
  local table="$1" csv="$2" ddl rows
  [[ "$table" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || cm_die "pg_load_csv: table name $table is not an identifier" || return 1
  [ -f "$csv" ] || cm_die "pg_load_csv: no such file: $csv" || return 1
  ddl="$("$CM_PYTHON" - "$CM_ENGINES_DIR" "$table" "$csv" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from blocks import BlockError, csv_header
table, path = sys.argv[2], sys.argv[3]
quote = lambda name: '"' + name.replace('"', '""') + '"'
try:
    header = csv_header(path)
except (BlockError, OSError, UnicodeDecodeError) as e:
    sys.exit(f"pg_load_csv: {e}")
cols = ", ".join(quote(h) + " text" for h in header)
print(f"SET client_min_messages = warning; DROP TABLE IF EXISTS {quote(table)}; CREATE TABLE {quote(table)} ({cols});")
EOF
  )" || cm_die "pg_load_csv: cannot read the header of $csv" || return 1
  pg_psql -c "$ddl" || cm_die "pg_load_csv: creating $table failed" || return 1
  # COPY FROM STDIN with psql's stdin redirected from the file: the client reads it, like \copy,
  # so the server's OS user needs no access to the file.
  pg_psql -c "COPY \"$table\" FROM STDIN WITH (FORMAT csv, HEADER true)" <"$csv" ||
    cm_die "pg_load_csv: loading $csv into $table failed" || return 1
  rows="$(pg_psql -At -c "SELECT count(*) FROM \"$table\"")"
  echo "pg_load_csv: $table <- $csv ($rows rows)" >&2
}

# pg_run_blocks SQLFILE OUTDIR: runs each `-- custmetrics: NAME` block of a `custmetrics sql
# --dialect postgres` script and writes its result to OUTDIR/NAME.csv (header, comma, NULL as an
# empty unquoted field, dates YYYY-MM-DD). A block's file appears only when its query succeeded.
pg_run_blocks() {
  [ "$#" -eq 2 ] || cm_die "usage: pg_run_blocks SQLFILE OUTDIR" || return 1
  local sql="$1" out="$2" split names name started
  [ -n "$CM_PG_DIR" ] || cm_die "PostgreSQL is not running (pg_start first)" || return 1
  [ -f "$sql" ] || cm_die "pg_run_blocks: no such file: $sql" || return 1
  mkdir -p "$out"
  split="$(mktemp -d "${TMPDIR:-/tmp}/custmetrics-blocks.XXXXXX")"
  if ! names="$("$CM_PYTHON" "$CM_ENGINES_DIR/blocks.py" split "$sql" "$split")"; then
    rm -rf "$split"
    cm_die "pg_run_blocks: cannot split $sql into blocks" || return 1
  fi
  for name in $names; do
    started=$SECONDS
    # COPY ... TO STDOUT through psql is what \copy does, but \copy must fit on one line and a
    # query may span many (and hold -- comments). The query goes on lines of its own so that a
    # trailing comment cannot swallow the closing parenthesis.
    {
      echo "COPY ("
      cat "$split/$name.sql"
      echo ") TO STDOUT WITH (FORMAT csv, HEADER true);"
    } >"$split/$name.copy.sql"
    if ! pg_psql -f "$split/$name.copy.sql" >"$out/$name.csv.tmp"; then
      rm -f "$out/$name.csv.tmp"
      rm -rf "$split"
      cm_die "pg_run_blocks: block $name of $sql failed (psql's error above)" || return 1
    fi
    mv "$out/$name.csv.tmp" "$out/$name.csv"
    echo "pg_run_blocks: $name -> $out/$name.csv ($(($(wc -l <"$out/$name.csv") - 1)) lines, $((SECONDS - started)) s)" >&2
  done
  rm -rf "$split"
}
