#!/usr/bin/env bash
# Short sipp comparison of one edge against two edges sharing a JetStream
# location store (LOCATION_STORE=jetstream), each edge driven by its own
# sipp at RATE/edges. MODE=register (default): REGISTERs with digest.
# MODE=calls: calls (407 round, 180, 200, ACK, BYE) to one callee
# registered through the first edge, so that with two edges half the calls
# are handed from the second edge to the first. Prints successful REGISTERs
# or calls per second. All traffic stays on 127.0.0.1. Usage:
#   [MODE=calls] bench/cluster/run.sh [RATE] [SECONDS]      (defaults 2000, 15)
set -euo pipefail
# sipp's own -timeout does not end it while calls wait for a response that
# never comes (seen: a caller waiting for the 200 of a BYE), so every sipp
# runs under timeout(1) too; SIGINT makes it print its statistics.
sippt() { local limit=$1; shift; timeout -s INT -k 5 "$limit" sipp "$@"; }
RATE=${1:-2000}
SECS=${2:-15}
AGENTS=4000
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/routr-cluster-bench.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

go build -o "$WORK/routr" "$ROOT/cmd/routr"
mkdir -p "$WORK/res"
python3 - "$WORK" "$AGENTS" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/res/domains.yaml", "w") as f:
    f.write("- apiVersion: v2beta1\n  kind: Domain\n  ref: d1\n  metadata:\n    name: bench\n  spec:\n    context:\n      domainUri: sip.local\n")
with open(f"{work}/res/agents.yaml", "w") as a, open(f"{work}/res/credentials.yaml", "w") as c, \
     open(f"{work}/users.csv", "w") as u:
    u.write("SEQUENTIAL\n")
    for i in range(n):
        user = f"u{i:06d}"
        a.write(f"- apiVersion: v2beta1\n  kind: Agent\n  ref: a{i}\n  metadata:\n    name: {user}\n  spec:\n    username: \"{user}\"\n    domainRef: d1\n    credentialsRef: c{i}\n")
        c.write(f"- apiVersion: v2beta1\n  kind: Credentials\n  ref: c{i}\n  metadata:\n    name: {user}\n  spec:\n    credentials:\n      username: \"{user}\"\n      password: \"pw{i}\"\n")
        u.write(f"{user};pw{i}\n")
PY

NATS_PORT=4391
/usr/sbin/nats-server -js -a 127.0.0.1 -p $NATS_PORT -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
sleep 1

start_edge() { # name sipport httpport bucket [store]
  cat >"$WORK/$1.yaml" <<Y
kind: EdgePort
apiVersion: v2beta1
ref: $1
spec:
  bindAddr: 127.0.0.1
  transport:
    - protocol: udp
      port: $2
Y
  env -i PATH="$PATH" CONFIG_PATH="$WORK/$1.yaml" PATH_TO_RESOURCES="$WORK/res" HOSTNAME="$1" \
    LOCATION_STORE="${5:-jetstream}" CLUSTER_NATS_URL=nats://127.0.0.1:$NATS_PORT LOCATION_BUCKET="bench_$4" \
    CLUSTER_SECRET=bench-cluster-secret-0123456789 AUTH_SECRET=bench \
    HTTP_ADDR=127.0.0.1:$3 ENABLE_HEALTHCHECKS=true LOG_LEVEL=error \
    "$WORK/routr" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$3/healthz" >/dev/null && return; sleep 0.1; done
  echo "edge $1 not healthy"; cat "$WORK/$1.log"; exit 1
}

drive() { # sipport rate localport -> writes successful count
  sippt $(( SECS + 25 )) -sf "$ROOT/bench/scenarios/register.xml" -inf "$WORK/users.csv" -set domain sip.local -set expires 3600 \
    -i 127.0.0.1 -p "$3" -r "$2" -m $(( $2 * SECS )) -l $(( $2 * 4 )) -nostdin -timeout $(( SECS + 20 ))s \
    -trace_stat -stf "$WORK/stat-$3.csv" "127.0.0.1:$1" >"$WORK/sipp-$3.log" 2>&1 || true
  grep -o 'Successful call.*' "$WORK/sipp-$3.log" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}'
}

call_drive() { # sipport rate localport -> writes successful count
  sippt $(( SECS + 45 )) -sf "$ROOT/bench/scenarios/caller.xml" -inf "$WORK/users.csv" -set domain sip.local -set callee u000000 \
    -i 127.0.0.1 -p "$3" -r "$2" -m $(( $2 * SECS )) -l $(( $2 * 4 )) -d 0 -nostdin -timeout $(( SECS + 40 ))s \
    "127.0.0.1:$1" >"$WORK/sipp-$3.log" 2>&1 || true
  grep -o 'Successful call.*' "$WORK/sipp-$3.log" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}'
}

# callee registers u000000 through the edge at sipport from port 19200 and
# answers every call there.
callee() { # sipport ncalls
  sippt 15 -sf "$ROOT/bench/scenarios/register.xml" -inf "$WORK/users.csv" -set domain sip.local -set expires 3600 \
    -i 127.0.0.1 -p 19200 -m 1 -nostdin -timeout 10s "127.0.0.1:$1" >"$WORK/callee-reg.log" 2>&1
  timeout -s INT -k 5 $(( SECS + 65 )) sipp -sf "$ROOT/bench/scenarios/callee.xml" -set user u000000 -i 127.0.0.1 -p 19200 -m "$2" -nostdin \
    -timeout $(( SECS + 60 ))s >"$WORK/callee.log" 2>&1 &
  CALLEE=$!
  sleep 0.5
}

run() { # label edges...
  local label=$1; shift
  local n=$# per=$(( RATE / $# )) i=0 t0 t1 total=0 drivers=()
  t0=$(date +%s.%N)
  for sp in "$@"; do
    ( ${DRIVE:-drive} "$sp" "$per" $(( 19100 + i )) >"$WORK/ok-$label-$i" ) &
    drivers+=($!)
    i=$(( i + 1 ))
  done
  wait "${drivers[@]}" || true
  t1=$(date +%s.%N)
  for f in "$WORK"/ok-"$label"-*; do total=$(( total + $(cat "$f" || echo 0) )); done
  echo "$label: $n edge(s), ${MODE:-register}, offered $RATE/s for ${SECS}s: $total successful in $(echo "$t1 - $t0" | bc) s = $(echo "$total / ($t1 - $t0)" | bc)/s"
}

if [ "${MODE:-register}" = calls ]; then
  DRIVE=call_drive
  start_edge e0 19063 19083 mem memory
  callee 19063 $(( RATE * SECS ))
  run mem 19063
  kill "$CALLEE" 2>/dev/null || true; kill "${PIDS[-1]}"; unset 'PIDS[-1]'; sleep 1
  start_edge e1 19060 19080 one
  callee 19060 $(( RATE * SECS ))
  run one 19060
  kill "$CALLEE" 2>/dev/null || true; kill "${PIDS[-1]}"; unset 'PIDS[-1]'; sleep 1
  start_edge e2 19061 19081 two
  start_edge e3 19062 19082 two
  callee 19061 $(( RATE * SECS ))
  sleep 0.5 # the binding reaches e3's copy
  run two 19061 19062
  kill "$CALLEE" 2>/dev/null || true
  exit 0
fi
start_edge e0 19063 19083 mem memory
run mem 19063
kill "${PIDS[-1]}"; unset 'PIDS[-1]'; sleep 1
start_edge e1 19060 19080 one
run one 19060
kill "${PIDS[-1]}"; unset 'PIDS[-1]'; sleep 1
start_edge e2 19061 19081 two
start_edge e3 19062 19082 two
run two 19061 19062
