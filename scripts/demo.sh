#!/usr/bin/env bash
# Demo on the local test bed: bed up, milvus-cdc up on the bed's config, one task created with
# curl, sample rows written to SOURCE, TARGET watched for them for a bounded time.
# The server it starts is stopped at the end; the bed stays up (scripts/testbed.sh down).
#
# Env: DEMO_WAIT  seconds to watch TARGET (default 60)
#      DEMO_ROWS  sample rows written to SOURCE (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."

WAIT=${DEMO_WAIT:-60}
ROWS=${DEMO_ROWS:-100}
COLL=cdc_demo
BIN=build/milvus-cdc

say() { printf '\n== %s\n' "$*"; }

say "test bed up"
bash scripts/testbed.sh up
eval "$(bash scripts/testbed.sh env | sed 's/^/export /')"
bash scripts/testbed.sh status || true

server_pid=""
stop_server() { # SIGTERM the server we started, SIGKILL that PID after 20 s
  [[ -n "$server_pid" ]] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    say "stopping milvus-cdc (pid $server_pid)"
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

cdc() { # POST one /cdc request, print the answer (also kept in $answer)
  echo "\$ curl -s -X POST http://$CDC/cdc -d '$1'"
  answer=$(curl -sS -m 60 -X POST "http://$CDC/cdc" -H 'Content-Type: application/json' -d "$1")
  echo "$answer"
}

if [[ -x "$BIN" ]]; then
  port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  CDC=127.0.0.1:$port
  log=$TESTBED_RUN_DIR/cdc/demo-server.log
  say "starting $BIN --config $CDC_CONFIG --address $CDC (log: $log)"
  "$BIN" --config "$CDC_CONFIG" --address "$CDC" >"$log" 2>&1 &
  server_pid=$!
  ok=0
  for _ in $(seq 60); do   # up to 30 s for /healthz
    if curl -sf -m 2 "http://$CDC/healthz" >/dev/null; then ok=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ((ok == 0)); then
    tail -n 40 "$log" >&2
    echo "milvus-cdc did not come up" >&2; exit 1
  fi
  echo "milvus-cdc answers on http://$CDC/healthz"

  # a task left by an earlier demo on this bed (same target, scope "*") would make create fail
  cdc '{"request_type":"list"}' >/dev/null
  for old in $("$PYTHON" -c '
import json, sys
for t in json.loads(sys.argv[1]).get("data", {}).get("tasks") or []:
    if t["milvus_connect_param"].get("uri") == sys.argv[2] and \
            [c["name"] for c in t.get("collection_infos") or []] == ["*"]:
        print(t["task_id"])' "$answer" "$TARGET_MILVUS_URI"); do
    say "delete task $old left by an earlier demo run"
    cdc '{"request_type":"delete","request_data":{"task_id":"'"$old"'"}}'
  done

  say "create a task: everything on SOURCE -> TARGET $TARGET_MILVUS_URI"
  cdc '{"request_type":"create","request_data":{"milvus_connect_param":{"uri":"'"$TARGET_MILVUS_URI"'","connect_timeout":10},"collection_infos":[{"name":"*"}]}}'
  task_id=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1]).get("data",{}).get("task_id",""))' "$answer" 2>/dev/null || true)
  say "list tasks"
  cdc '{"request_type":"list"}'
else
  say "$BIN not found: build it with \`make build\` to see the server part of the demo"
fi

say "write $ROWS sample rows to SOURCE ($SOURCE_MILVUS_URI), collection $COLL"
"$PYTHON" testbed/demo_client.py write "$SOURCE_MILVUS_URI" "$COLL" "$ROWS"

say "watch TARGET ($TARGET_MILVUS_URI) for up to ${WAIT}s"
if "$PYTHON" testbed/demo_client.py watch "$TARGET_MILVUS_URI" "$COLL" "$ROWS" "$WAIT"; then
  say "REPLICATED: all $ROWS rows of $COLL are on TARGET"
else
  say "NOT REPLICATED: TARGET did not get $COLL's $ROWS rows within ${WAIT}s."
  echo "Look at the task's state and reason (list above) and at the server log: ${log:-none}"
fi

if [[ -n "${task_id:-}" ]]; then
  # the task store lives in the bed's run dir; delete the demo task so a rerun starts clean
  say "delete the demo task"
  cdc '{"request_type":"delete","request_data":{"task_id":"'"$task_id"'"}}'
fi
stop_server
echo
echo "The bed is still up: scripts/testbed.sh status | env | down"
