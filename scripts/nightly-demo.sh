#!/usr/bin/env bash
# The main job, on this machine: a local Prefect server and process worker, the
# `nightly-cluster-eval` deployment from prefect.yaml, the embedded stack, and one
# nightly run watched to the end. Run after `make setup`. Safe to re-run: every
# step checks first (server answering, pool existing, worker alive, stack applied).
#
#   bash scripts/nightly-demo.sh            # exit code: the run's (0 passed, 1 failed)
#   bash scripts/stop-all.sh                # stop worker, server and stack
#
# Environment: CLUSTER_EVAL_PREFECT_PORT (4200), CLUSTER_EVAL_DEPLOYMENT
# (nightly-cluster-eval; cluster-eval-canary for the quick one),
# CLUSTER_EVAL_SERVE_CONFIG (serving/configs/embedded-cpu.yaml; passed as the
# run's serve_config parameter).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$PROJECT_DIR"
STATE_DIR="$PROJECT_DIR/.cluster-eval"
VENV="${CLUSTER_EVAL_VENV:-$PROJECT_DIR/.venv}"
PORT="${CLUSTER_EVAL_PREFECT_PORT:-4200}"
POOL="cluster-eval-pool"
DEPLOYMENT="${CLUSTER_EVAL_DEPLOYMENT:-nightly-cluster-eval}"
SERVE_CONFIG="${CLUSTER_EVAL_SERVE_CONFIG:-serving/configs/embedded-cpu.yaml}"
PREFECT="$VENV/bin/prefect"
PY="$VENV/bin/python"

export PREFECT_HOME="$STATE_DIR/prefect"          # server SQLite DB and profiles live here
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
export PREFECT_UI_URL="http://127.0.0.1:$PORT"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DO_NOT_TRACK=1
export CLUSTER_EVAL_PROJECT_DIR="$PROJECT_DIR"     # prefect.yaml's pull step
export CLUSTER_EVAL_SERVE_ENV="${CLUSTER_EVAL_SERVE_ENV:-$PROJECT_DIR/.venv-serve}"

mkdir -p "$PREFECT_HOME" "$STATE_DIR/logs" "$STATE_DIR/pids"
[ -x "$PREFECT" ] || { echo "no $PREFECT: run 'make setup' first" >&2; exit 2; }

# Pid files hold "PID START" (START: field 22 of /proc/PID/stat, the start time), so
# neither this script nor scripts/stop-all.sh mistakes a reused pid for our process.
start_time() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}
record_pid() {  # record_pid PID NAME
  echo "$1 $(start_time "$1")" >"$STATE_DIR/pids/$2.pid"
}
alive() {  # alive PIDFILE PATTERN: the recorded process still runs the expected command
  local pid="" start=""
  [ -f "$1" ] && read -r pid start _ <"$1" && [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -z "$start" ] || [ "$(start_time "$pid")" = "$start" ] || return 1  # old file: no START
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$2"* ]]
}
api_up() {
  "$PY" - <<'PYEOF'
import os, sys, httpx
try:
    sys.exit(0 if httpx.get(os.environ["PREFECT_API_URL"] + "/health", timeout=2).is_success else 1)
except httpx.HTTPError:
    sys.exit(1)
PYEOF
}

echo "==> Prefect server on $PREFECT_UI_URL"
if ! api_up; then
  nohup "$PREFECT" server start --host 127.0.0.1 --port "$PORT" \
    >"$STATE_DIR/logs/prefect-server.log" 2>&1 &
  record_pid $! prefect-server
  for _ in $(seq 1 120); do api_up && break; sleep 1; done
  api_up || { echo "server did not start; see $STATE_DIR/logs/prefect-server.log" >&2; exit 2; }
fi

echo "==> work pool $POOL (process)"
"$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1 \
  || "$PREFECT" work-pool create "$POOL" --type process

echo "==> process worker"
if ! alive "$STATE_DIR/pids/prefect-worker.pid" "prefect worker start"; then
  nohup "$PREFECT" worker start --pool "$POOL" --type process \
    >"$STATE_DIR/logs/prefect-worker.log" 2>&1 &
  record_pid $! prefect-worker
fi

echo "==> deployments from prefect.yaml"
"$PREFECT" --no-prompt deploy --all

echo "==> embedded stack (Ray head + Serve app; the flow re-applies it, idempotent)"
"$VENV/bin/cluster-eval" stack up --config "$SERVE_CONFIG"

echo "==> cluster-eval/$DEPLOYMENT, watched"
rc=0
"$PREFECT" deployment run "cluster-eval/$DEPLOYMENT" --watch \
  --param "serve_config=$SERVE_CONFIG" || rc=$?

echo
"$PY" -m flows.locate "cluster-eval/$DEPLOYMENT" || true
cat <<EOT

Prefect UI:   $PREFECT_UI_URL   (logs in $STATE_DIR/logs/)
Query:        .venv/bin/python -c "import duckdb; print(duckdb.connect('<warehouse>', read_only=True).sql('select * from check_replica_skew'))"
Stop it all:  bash scripts/stop-all.sh
EOT
exit "$rc"
