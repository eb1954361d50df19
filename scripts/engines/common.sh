# shellcheck shell=bash
# Helpers shared by postgres.sh and spark.sh (sourced by them; not meant to be run).
#
# One EXIT trap for every engine: a script that starts PostgreSQL and Spark must stop both, and
# a second `trap ... EXIT` would silently replace the first. Engines register their cleanup with
# cm_on_exit instead; a script sourcing these files should do the same rather than set its own
# EXIT trap.

if [ -n "${CM_ENGINES_COMMON_SOURCED:-}" ]; then
  return 0
fi
CM_ENGINES_COMMON_SOURCED=1

# shellcheck disable=SC2034 # used by the files that source this one
CM_ENGINES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The interpreter the Python helpers run with; pip installs go to the same one.
CM_PYTHON="${CM_PYTHON:-python3}"
CM_EXIT_HOOKS=()

cm_die() {
  echo "error: $*" >&2
  return 1
}

# Run the registered hooks last-registered first (a later engine may depend on an earlier one).
# A failing hook must not stop the others from running, so errexit is off while they run.
cm_run_exit_hooks() {
  local status=$? i
  set +e
  for ((i = ${#CM_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
    eval "${CM_EXIT_HOOKS[i]}"
  done
  CM_EXIT_HOOKS=()
  return "$status"
}

cm_on_exit() {
  CM_EXIT_HOOKS+=("$1")
}

trap cm_run_exit_hooks EXIT
# A signal would otherwise kill the shell without running the EXIT trap in some bash versions;
# exiting turns it into an ordinary exit (with the conventional 128+N status).
trap 'exit 130' INT
trap 'exit 143' TERM

# Whether process PID is running. A zombie is not: a daemon's parent here may be an init that
# reaps late, and `kill -0` succeeds on a zombie until then.
cm_alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$state" != Z* ]]
}

# A TCP port nobody listens on now (the kernel picks it). There is a small window before the
# server binds it; a server that then fails to bind fails loudly, it is not retried silently.
cm_free_port() {
  "$CM_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until something accepts TCP connections on 127.0.0.1:PORT, or TIMEOUT seconds pass.
cm_wait_port() {
  local port="$1" timeout="$2"
  "$CM_PYTHON" - "$port" "$timeout" <<'EOF'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.5)
EOF
}
