#!/usr/bin/env bash
# Five local Aspen daemons: init, add learners, change membership, write and read over HTTP
# and redis-cli, kill -9 the leader, watch failover, write again. See docs/cluster-smoke.md.
# Every wait is bounded; the trap stops every daemon and removes the work dir (KEEP=1 keeps it).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
ASPEN=("$PY" -m aspen.cli)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aspen-smoke.XXXXXX")"
N=5
declare -A PID=()

cleanup() {
  local status=$?
  for i in "${!PID[@]}"; do kill -CONT "${PID[$i]}" 2>/dev/null || true; kill -TERM "${PID[$i]}" 2>/dev/null || true; done
  for i in "${!PID[@]}"; do
    timeout 10 tail --pid="${PID[$i]}" -f /dev/null 2>/dev/null || kill -KILL "${PID[$i]}" 2>/dev/null || true
  done
  if [[ $status -ne 0 ]]; then
    echo "smoke: FAILED (status $status); last log lines:" >&2
    for i in $(seq 1 $N); do echo "--- n$i.log" >&2; tail -n 15 "$WORK/n$i.log" 2>/dev/null >&2 || true; done
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then echo "smoke: kept $WORK"; else rm -rf "$WORK"; fi
  exit $status
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND until it succeeds, or fail.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then echo "smoke: timed out after ${secs}s waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}
post() { timeout 30 curl -sS -f -X POST -H 'content-type: application/json' -d "$2" "http://${HTTP[$1]}$3"; }
get() { timeout 10 curl -sS -f "http://${HTTP[$1]}$2"; }
leader_of() { get "$1" /health | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["leader"] or "")'; }
rcli() { local i=$1; shift; timeout 20 redis-cli -p "${RESP[$i]}" "$@"; }

# Free loopback ports: RESP, HTTP and raft for each node.
read -r -a PORTS <<< "$("$PY" -c '
import socket
socks = [socket.socket() for _ in range(15)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()')"
declare -A RESP=() HTTP=() RAFT=()
for i in $(seq 1 $N); do
  RESP[$i]=${PORTS[$((3*i-3))]}; HTTP[$i]=127.0.0.1:${PORTS[$((3*i-2))]}; RAFT[$i]=127.0.0.1:${PORTS[$((3*i-1))]}
done

step "write five configs (no bootstrap list: the cluster is initialised over HTTP)"
for i in $(seq 1 $N); do
  {
    echo "[node]"; echo "id = $i"; echo "port = ${RESP[$i]}"; echo "dir = \"n$i\""
    echo; echo "[raft]"; echo "listen = \"${RAFT[$i]}\""; echo "tick_ms = 50"
    echo; echo "[http]"; echo "listen = \"${HTTP[$i]}\""
    echo; echo "[peers]"
    for j in $(seq 1 $N); do
      [[ $j == "$i" ]] || echo "$j = { raft = \"${RAFT[$j]}\", http = \"${HTTP[$j]}\", resp = \"127.0.0.1:${RESP[$j]}\" }"
    done
  } > "$WORK/n$i.toml"
done
cat "$WORK/n1.toml"

step "start five daemons"
for i in $(seq 1 $N); do
  (cd "$WORK" && exec "${ASPEN[@]}" node --config "n$i.toml" >"n$i.log" 2>&1) &
  PID[$i]=$!
done
for i in $(seq 1 $N); do wait_for 30 "node $i to answer PING" rcli "$i" PING; done
echo "all five answer PING (no cluster yet)"

step "POST /init on node 1: voters 1, 2, 3"
post 1 '{"voters": [1, 2, 3]}' /init
wait_for 20 "a leader" bash -c "[[ -n \$(curl -sf http://${HTTP[1]}/health | grep -o '\"leader\": [0-9]*') ]]"
LEADER=$(leader_of 1); echo "leader: node $LEADER"

step "add nodes 4 and 5 as learners (sent to node 1: forwarded to the leader if needed)"
post 1 "{\"id\": 4, \"address\": \"${RAFT[4]}\"}" /add-learner
post 1 "{\"id\": 5, \"address\": \"${RAFT[5]}\"}" /add-learner

step "change membership to voters 1-5 (joint consensus)"
post 2 '{"voters": [1, 2, 3, 4, 5]}' /change-membership
"${ASPEN[@]}" status --http "${HTTP[1]}"

step "write over HTTP, read with redis-cli on every node"
post 3 '{"key": "smoke", "value": "hello"}' /write
post 4 '{"command": ["RPUSH", "list", "a", "b", "c"]}' /write
for i in $(seq 1 $N); do
  got=$(rcli "$i" GET smoke); [[ "$got" == hello ]] || { echo "node $i read '$got'" >&2; exit 1; }
done
echo "every node reads smoke=hello"
post 5 '{"key": "smoke"}' /read
[[ $(rcli 5 SET cli-write 42) == OK ]]
post 1 '{"command": ["GET", "cli-write"], "consistency": "linearizable"}' /read
rcli 2 INFO raft | grep -E 'raft_(role|term|leader|voters)'

step "kill -9 the leader (node $LEADER) and watch the failover"
kill -KILL "${PID[$LEADER]}"; wait "${PID[$LEADER]}" 2>/dev/null || true; unset "PID[$LEADER]"
SURVIVOR=$(( LEADER % N + 1 ))
start=$SECONDS
wait_for 30 "a new leader" bash -c "l=\$(curl -sf http://${HTTP[$SURVIVOR]}/health | grep -o '\"leader\": [0-9]*' | grep -o '[0-9]*'); [[ -n \$l && \$l != $LEADER ]]"
NEW=$(leader_of "$SURVIVOR"); echo "new leader: node $NEW (after ~$((SECONDS - start))s)"
post "$SURVIVOR" '{"key": "after-failover", "value": "yes"}' /write
for i in $(seq 1 $N); do
  [[ $i == "$LEADER" ]] && continue
  [[ $(rcli "$i" GET after-failover) == yes && $(rcli "$i" GET smoke) == hello ]]
done
echo "the four survivors serve old and new writes"
"${ASPEN[@]}" status --http "${HTTP[$SURVIVOR]}" || true

step "restart node $LEADER: it catches up"
(cd "$WORK" && exec "${ASPEN[@]}" node --config "n$LEADER.toml" >>"n$LEADER.log" 2>&1) &
PID[$LEADER]=$!
wait_for 30 "node $LEADER to serve the new write" bash -c "[[ \$(redis-cli -p ${RESP[$LEADER]} GET after-failover) == yes ]]"
echo "node $LEADER is back and reads after-failover=yes"
echo; echo "smoke: PASSED"
