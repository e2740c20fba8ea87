#!/usr/bin/env bash
# Stop what scripts/nightly-demo.sh started: the process worker and the Prefect
# server (by the pids it recorded), then the embedded stack (our Serve apps and the
# local Ray head, if cluster-eval started it). Safe to run when some or all of it is
# already stopped.
#
# A pid file holds "PID START" (START: the process's start time, field 22 of
# /proc/PID/stat). A pid is signalled only while it is still that process — same
# start time, and a command line that is the expected Prefect command — so a pid
# the kernel has since given to another process is never killed. An old pid file
# without START is trusted on the command line alone.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$PROJECT_DIR"
STATE_DIR="$PROJECT_DIR/.cluster-eval"
VENV="${CLUSTER_EVAL_VENV:-$PROJECT_DIR/.venv}"
export CLUSTER_EVAL_SERVE_ENV="${CLUSTER_EVAL_SERVE_ENV:-$PROJECT_DIR/.venv-serve}"

start_time() {  # start_time PID: clock ticks since boot when PID started
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"  # drop "pid (name) ": the name may hold spaces
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

is_recorded() {  # is_recorded PID START PATTERN: PID is still the recorded process
  local now cmd
  now="$(start_time "$1")" || return 1
  [ -z "$2" ] || [ "$now" = "$2" ] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"$3"* ]]
}

stop_pid() {  # stop_pid NAME PATTERN: TERM, wait up to 20 s, then KILL; remove the pid file
  local file="$STATE_DIR/pids/$1.pid" pid="" start=""
  [ -f "$file" ] || return 0
  read -r pid start _ <"$file" || true
  if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
    echo "ignoring $file: no pid in it"
  elif is_recorded "$pid" "$start" "$2"; then
    echo "stopping $1 ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do is_recorded "$pid" "$start" "$2" || break; sleep 1; done
    if is_recorded "$pid" "$start" "$2"; then kill -KILL "$pid" 2>/dev/null || true; fi
  elif [ -d "/proc/$pid" ]; then
    echo "not stopping pid $pid: it is no longer $1 (the pid was reused); $file removed"
  fi
  rm -f "$file"
}

stop_pid prefect-worker "prefect worker start"
stop_pid prefect-server "prefect server start"

if [ "${1:-}" != "--keep-stack" ] && [ -x "$VENV/bin/cluster-eval" ]; then
  echo "stopping the embedded stack"
  "$VENV/bin/cluster-eval" stack down || true
fi
echo "stopped"
