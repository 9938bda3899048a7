#!/usr/bin/env bash
# Replicated produce (issue 11): three sluice-broker processes of one region replicating a
# 4-partition topic (factor 3, acks=all, min_insync_replicas 2, log.flush always) beside one
# broker alone (factor 1, the same flush policy) in the same run, on this machine (all replicas
# share its disk and cores), plus the machine's fsync rate for scale.
# Usage: bench/replication.sh BIN_DIR [SECONDS] [THREADS]
# SLUICE_BENCH_PROFILE=DIR: also profile the three-broker run system-wide (perf record -a -g;
# DIR/replicated.perf.data) and print where the CPU went, by process and by kernel/user.
set -euo pipefail
BIN=$1
SECS=${2:-5}
THREADS=${3:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d /tmp/sluice-bench-replication-XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$DIR"
}
trap cleanup EXIT
port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_ok() {  # wait_ok URL
  for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "replication bench: $1 did not answer" >&2
  return 1
}

EC=$(port); EP=$(port)
etcd --name bench --data-dir "$DIR/etcd" --listen-client-urls "http://127.0.0.1:$EC" \
  --advertise-client-urls "http://127.0.0.1:$EC" --listen-peer-urls "http://127.0.0.1:$EP" \
  --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
  --initial-cluster "bench=http://127.0.0.1:$EP" --log-level warn >"$DIR/etcd.log" 2>&1 &
PIDS+=($!)
wait_ok "http://127.0.0.1:$EC/health"

URLS=()
declare -A PID_OF
start_broker() {  # start_broker I PORT
  SLUICE_BROKER_ID="eu-$1" SLUICE_BROKER_PORT="$2" SLUICE_DATA_DIR="$DIR/eu-$1" \
    SLUICE_ETCD_URL="http://127.0.0.1:$EC" "$BIN/sluice-broker" \
    --config "$ROOT/config/broker-eu-central-replicated.yaml" >>"$DIR/eu-$1.log" 2>&1 &
  PIDS+=($!)
  PID_OF["eu-$1"]=$!
}
for i in 1 2 3; do
  P=$(port)
  start_broker "$i" "$P"
  URLS+=("http://127.0.0.1:$P")
done
SP=$(port)
SLUICE_BROKER_ID=alone SLUICE_BROKER_PORT="$SP" SLUICE_DATA_DIR="$DIR/alone" \
  "$BIN/sluice-broker" --config "$ROOT/config/broker-eu-central.yaml" >"$DIR/alone.log" 2>&1 &
PIDS+=($!)
for u in "${URLS[@]}" "http://127.0.0.1:$SP"; do wait_ok "$u/healthz"; done

create() {  # create URL
  curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"name":"bench","partitions":4}' "$1/v1/topics" >/dev/null
}
create "${URLS[0]}"
create "http://127.0.0.1:$SP"
# Every partition led and fully in sync before measuring.
for _ in $(seq 1 200); do
  if curl -fsS "${URLS[0]}/v1/metadata" | python3 -c '
import json, sys
t = [t for t in json.load(sys.stdin)["topics"] if t["name"] == "bench"]
ok = t and len(t[0]["partitions"]) == 4 and all(p["leader"] and len(p["isr"]) == 3 for p in t[0]["partitions"])
sys.exit(0 if ok else 1)'; then break; fi
  sleep 0.1
done

fsync_probe() {
  python3 - "$DIR/probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n, t0 = 0, time.time()
while time.time() - t0 < 2:
    os.write(fd, b"x" * 230000); os.fdatasync(fd); n += 1
print(int(n / (time.time() - t0)))
PY
}
echo "machine: 230 KB append + fdatasync (one 1,000-record batch), one writer: $(fsync_probe) /s"
echo "-- one broker, factor 1 (log.flush always)"
"$BIN/sluice-bench-replication" "http://127.0.0.1:$SP" --seconds "$SECS" --threads "$THREADS"
echo "-- three brokers, factor 3, acks=all, min_insync_replicas 2 (log.flush always on each)"
if [[ -n "${SLUICE_BENCH_PROFILE:-}" ]]; then
  mkdir -p "$SLUICE_BENCH_PROFILE"
  PERF="$SLUICE_BENCH_PROFILE/replicated.perf.data"
  perf record -q -a -g -o "$PERF" -- \
    "$BIN/sluice-bench-replication" "${URLS[0]}" --seconds "$SECS" --threads "$THREADS"
  echo "profile (all CPUs during the three-broker run), by process:"
  perf report -i "$PERF" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
  echo "by privilege (k: kernel, .: user):"
  perf report -i "$PERF" --no-children --sort comm,dso --stdio 2>/dev/null | grep -E '^ +[0-9]' |
    head -12
else
  "$BIN/sluice-bench-replication" "${URLS[0]}" --seconds "$SECS" --threads "$THREADS"
fi

# Failover (default settings: replication.lease_ttl 3s, state_poll 200ms): SIGKILL the leader of
# a one-partition topic, time until a produce (acks=all) is acknowledged by the new leader; restart the killed
# broker and wait until it is in sync again; several rounds.
"$BIN/sluice-bench-replication" --write-batch "$DIR/batch"
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"name":"failover","partitions":1}' \
  "${URLS[0]}/v1/topics" >/dev/null
p0() {  # p0 URL -> "<leader> <leader_url> <isr size>" of failover-0
  curl -fsS --max-time 2 "$1/v1/metadata" 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin)["topics"]:
    if t["name"] == "failover":
        p = [p for p in t["partitions"] if p["partition"] == 0][0]
        print(p["leader"] or "-", p["leader_url"] or "-", len(p["isr"]))' 2>/dev/null || true
}
now_ms() { date +%s%3N; }
for _ in $(seq 1 200); do
  read -r _ _ ISR < <(p0 "${URLS[0]}") || true
  [[ "${ISR:-0}" == 3 ]] && break
  sleep 0.1
done
TIMES=()
for round in 1 2 3 4 5; do
  read -r LEADER _ _ < <(p0 "${URLS[0]}" || p0 "${URLS[1]}")
  [[ -n "${LEADER:-}" && "$LEADER" != "-" ]] || { echo "failover: no leader" >&2; break; }
  idx=${LEADER#eu-}
  T0=$(now_ms)
  kill -KILL "${PID_OF[$LEADER]}"; wait "${PID_OF[$LEADER]}" 2>/dev/null || true
  DONE=0
  for _ in $(seq 1 600); do
    for u in "${URLS[@]}"; do
      [[ "$u" == "${URLS[$((idx - 1))]}" ]] && continue
      read -r L LURL _ < <(p0 "$u") || true
      if [[ -n "${L:-}" && "$L" != "-" && "$L" != "$LEADER" ]]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
          -H 'Content-Type: application/vnd.kafka.record-batch.v2' \
          --data-binary @"$DIR/batch" "$LURL/v1/topics/failover/records") || true
        [[ "$code" == 200 ]] && DONE=1
      fi
      break
    done
    [[ $DONE -eq 1 ]] && break
    sleep 0.05
  done
  T1=$(now_ms)
  [[ $DONE -eq 1 ]] || { echo "failover round $round: no acknowledged produce within 30 s" >&2; break; }
  TIMES+=($((T1 - T0)))
  PORT=${URLS[$((idx - 1))]##*:}
  start_broker "$idx" "$PORT"
  for _ in $(seq 1 600); do
    read -r _ _ ISR < <(p0 "${URLS[$((idx % 3))]}") || true
    [[ "${ISR:-0}" == 3 ]] && break
    sleep 0.1
  done
done
if [[ ${#TIMES[@]} -gt 0 ]]; then
  printf '%s\n' "${TIMES[@]}" | sort -n | awk '{ t[NR] = $1 } END {
    printf "failover (leader SIGKILL -> first acks=all produce on the new leader, lease_ttl 3s), %d rounds: median %d ms, max %d ms\n", NR, t[int((NR + 1) / 2)], t[NR] }'
fi
