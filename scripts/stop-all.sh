#!/usr/bin/env bash
# Stop what scripts/nightly-demo.sh started: the process worker and the Prefect
# server (by the pids it recorded), then the embedded stack (Serve apps and the
# local Ray head). Safe to run when some or all of it is already stopped.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$PROJECT_DIR"
STATE_DIR="$PROJECT_DIR/.cluster-eval"
VENV="${CLUSTER_EVAL_VENV:-$PROJECT_DIR/.venv}"
export CLUSTER_EVAL_SERVE_ENV="${CLUSTER_EVAL_SERVE_ENV:-$PROJECT_DIR/.venv-serve}"

stop_pid() {  # stop_pid NAME: TERM, wait up to 20 s, then KILL; remove the pid file
  local file="$STATE_DIR/pids/$1.pid"
  [ -f "$file" ] || return 0
  local pid; pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    echo "stopping $1 ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_pid prefect-worker
stop_pid prefect-server

if [ "${1:-}" != "--keep-stack" ] && [ -x "$VENV/bin/cluster-eval" ]; then
  echo "stopping the embedded stack"
  "$VENV/bin/cluster-eval" stack down || true
fi
echo "stopped"
