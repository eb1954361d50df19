# shellcheck shell=bash
# A throwaway Spark Connect server in local mode, from the pyspark PyPI package (sourced, not run):
#
#   source scripts/engines/spark.sh
#   spark_start             # exports SPARK_REMOTE=sc://127.0.0.1:PORT (and SPARK_HOME)
#   python3 scripts/engines/spark_run.py --remote "$SPARK_REMOTE" ...
#   spark_stop              # also run at exit (cm_on_exit), so optional
#
# Call these from the main shell, not inside $(...): the server's state lives in shell variables.
# Every function fails (non-zero, message and server log on stderr) rather than skip anything.
#
# Nothing is downloaded except pyspark itself from PyPI when missing: the Spark Connect server
# jar ships in pyspark 4's jars/, so no --packages (Maven) is needed. Every file the server
# writes (logs, pid file, scratch space, warehouse, Derby, JVM temp files) goes to one temporary
# directory that spark_stop deletes.
#
# Environment: SPARK_CONNECT_PORT (default: a free port), SPARK_START_TIMEOUT (seconds from
# the end of the installation to a query answered, default 300), CM_SPARK_MASTER (default local[2]), CM_SPARK_DRIVER_MEMORY (default 4g: the results are
# collected through the driver, and Spark's default 1g ran out on the 10M-row set's summary),
# CM_PYTHON (default python3).

set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CM_SPARK_DIR=""
CM_SPARK_PID=""
CM_SPARK_EXIT_HOOK=""

# pyspark (with the Connect client's dependencies) and Java 17+, installed when missing (a fresh
# CI machine): pyspark from PyPI, Java from Debian.
spark_prepare() {
  if ! "$CM_PYTHON" -c 'import pyspark, grpc, google.protobuf, pandas, pyarrow' 2>/dev/null; then
    echo "pyspark[connect] is not installed: pip install" >&2
    "$CM_PYTHON" -m pip install --quiet "pyspark[connect]>=4.0,<5" ||
      cm_die "pip install pyspark[connect] failed" || return 1
  fi
  SPARK_HOME="$("$CM_PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
  export SPARK_HOME
  [ -x "$SPARK_HOME/sbin/start-connect-server.sh" ] ||
    cm_die "no sbin/start-connect-server.sh in $SPARK_HOME (pyspark 4.x needed)" || return 1
  compgen -G "$SPARK_HOME/jars/spark-connect_*.jar" >/dev/null ||
    cm_die "no spark-connect jar in $SPARK_HOME/jars: this pyspark cannot serve Spark Connect offline" || return 1
  if ! command -v java >/dev/null; then
    [ "$(id -u)" = 0 ] || cm_die "java not found and not root to install it" || return 1
    echo "java not found: apt-get install openjdk-17-jre-headless" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || cm_die "apt-get update failed" || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >&2 ||
      cm_die "apt-get install openjdk-17-jre-headless failed" || return 1
  fi
  # Spark 4 needs Java 17; an older one fails deep in the server log with a class version error.
  local version
  version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
  [ -n "$version" ] && [ "$version" -ge 17 ] ||
    cm_die "Spark 4 needs Java 17 or newer; java -version says: $(java -version 2>&1 | head -n 1)" || return 1
}

spark_log() { # the server's log file (spark-daemon.sh names it after the user and host)
  compgen -G "$CM_SPARK_DIR/logs/*.out" | head -n 1
}

spark_fail_with_log() { # the whole log: the cause (a BindException, a bad conf) is rarely last
  local log
  log="$(spark_log || true)"
  echo "--- Spark Connect server log (${log:-none written}):" >&2
  [ -z "$log" ] || cat "$log" >&2
  echo "--- end of server log" >&2
  cm_die "$1"
}

spark_start() {
  [ -z "$CM_SPARK_DIR" ] || cm_die "spark_start: already running ($SPARK_REMOTE)" || return 1
  # The clock starts after the installation: on a fresh machine pip alone (pyspark is ~400 MB)
  # took most of the old 120 s, and a cold JVM on a busy 2-core machine needs the rest.
  spark_prepare || return 1
  local started=$SECONDS timeout="${SPARK_START_TIMEOUT:-300}"
  CM_SPARK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/custmetrics-spark.XXXXXX")"
  # Registered before anything can fail, so that a half-started server is stopped too.
  if [ -z "$CM_SPARK_EXIT_HOOK" ]; then
    cm_on_exit spark_stop
    CM_SPARK_EXIT_HOOK=1
  fi
  local d="$CM_SPARK_DIR" port
  port="${SPARK_CONNECT_PORT:-$(cm_free_port)}" || return 1
  mkdir -p "$d/logs" "$d/pids" "$d/local" "$d/warehouse" "$d/tmp" "$d/conf" || return 1

  # An empty SPARK_CONF_DIR: no spark-defaults.conf or spark-env.sh from elsewhere changes the
  # engine under test. The in-memory catalog keeps Hive and its Derby metastore out (they would
  # write metastore_db/ and derby.log into the working directory); derby.system.home is set
  # anyway in case something still starts Derby. UTC: dates must not depend on the machine.
  # Binding to 127.0.0.1: the server runs any SQL without authentication.
  # spark-daemon.sh reports a failed launch but still exits 0, so success is judged below by the
  # process and a real query, not by its exit code.
  if ! env -u SPARK_NO_DAEMONIZE SPARK_CONF_DIR="$d/conf" SPARK_LOG_DIR="$d/logs" SPARK_PID_DIR="$d/pids" \
    SPARK_IDENT_STRING=custmetrics "$SPARK_HOME/sbin/start-connect-server.sh" \
    --master "${CM_SPARK_MASTER:-local[2]}" \
    --driver-memory "${CM_SPARK_DRIVER_MEMORY:-4g}" \
    --conf spark.driver.maxResultSize="${CM_SPARK_DRIVER_MEMORY:-4g}" \
    --conf spark.connect.grpc.binding.address=127.0.0.1 \
    --conf spark.connect.grpc.binding.port="$port" \
    --conf spark.sql.session.timeZone=UTC \
    --conf spark.ui.enabled=false \
    --conf spark.sql.catalogImplementation=in-memory \
    --conf spark.local.dir="$d/local" \
    --conf spark.sql.warehouse.dir="$d/warehouse" \
    --conf spark.driver.extraJavaOptions="-Djava.io.tmpdir=$d/tmp -Dderby.system.home=$d/tmp -Duser.timezone=UTC" \
    >"$d/start.out" 2>&1; then
    cat "$d/start.out" >&2
    spark_fail_with_log "start-connect-server.sh failed" || return 1
  fi
  CM_SPARK_PID="$(cat "$d/pids/"*.pid 2>/dev/null || true)"
  [ -n "$CM_SPARK_PID" ] || { cat "$d/start.out" >&2; spark_fail_with_log "start-connect-server.sh wrote no pid file"; } || return 1

  # Ready means a query runs, not just an open port (something else may hold the port: then the
  # server exits, and the client would retry against the wrong listener until the timeout). So
  # the query runs in a thread while the server process is watched, and a server that died fails
  # at once instead of after the timeout.
  local remaining=$((timeout - (SECONDS - started)))
  if ! timeout "$((remaining > 1 ? remaining : 1))" "$CM_PYTHON" -W ignore::FutureWarning - "$port" "$CM_SPARK_PID" <<'EOF'
import os, socket, sys, threading, time
port, pid = int(sys.argv[1]), int(sys.argv[2])

def alive():  # as cm_alive: a zombie is dead (its parent may reap it late)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False

def query(result):
    from pyspark.sql import SparkSession
    try:
        spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").getOrCreate()
        result.append(spark.sql("SELECT 1 AS one").collect()[0].one)
        spark.stop()
    except Exception as e:  # reported below; the thread must not die silently
        result.append(e)

while alive():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.5)
result = []
worker = threading.Thread(target=query, args=(result,), daemon=True)
worker.start()
while worker.is_alive() and alive():
    worker.join(0.5)
if not alive() or result != [1]:
    print("error: the Spark Connect server process exited during start-up" if not alive() else
          f"error: SELECT 1 on Spark Connect failed: {result[0] if result else 'no result'}", file=sys.stderr, flush=True)
    # Not sys.exit: gRPC's threads, still retrying against the port, would hold the exit until
    # the timeout.
    os._exit(1)
EOF
  then
    spark_fail_with_log "Spark Connect did not become ready on 127.0.0.1:$port (limit $timeout s)" || return 1
  fi
  export SPARK_REMOTE="sc://127.0.0.1:$port"
  echo "Spark $("$CM_PYTHON" -c 'import pyspark; print(pyspark.__version__)') Connect ready at $SPARK_REMOTE in $((SECONDS - started)) s ($d)" >&2
}

# Stops the server and deletes its directory. Safe to call twice, or when spark_start failed
# halfway (it is the exit hook).
spark_stop() {
  [ -n "$CM_SPARK_DIR" ] || return 0
  local d="$CM_SPARK_DIR" status=0 i
  if [ -n "$CM_SPARK_PID" ] && cm_alive "$CM_SPARK_PID"; then
    SPARK_CONF_DIR="$d/conf" SPARK_LOG_DIR="$d/logs" SPARK_PID_DIR="$d/pids" SPARK_IDENT_STRING=custmetrics \
      "$SPARK_HOME/sbin/stop-connect-server.sh" >/dev/null 2>&1 || true
    # stop-connect-server.sh only sends SIGTERM; the JVM's shutdown takes a few seconds.
    for ((i = 0; i < 60; i++)); do
      cm_alive "$CM_SPARK_PID" || break
      sleep 0.5
    done
    if cm_alive "$CM_SPARK_PID"; then
      echo "warning: Spark Connect server $CM_SPARK_PID ignored SIGTERM for 30 s; killing it" >&2
      kill -KILL "$CM_SPARK_PID" 2>/dev/null || true
      status=1
    fi
  fi
  rm -rf "$d" || status=1
  CM_SPARK_DIR=""
  CM_SPARK_PID=""
  unset SPARK_REMOTE
  return "$status"
}
