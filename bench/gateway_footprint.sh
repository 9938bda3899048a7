#!/usr/bin/env bash
# Gateway footprint: binary size, and resident memory of an idle sluice-gateway (regions
# unreachable, so nothing drains), each figure beside the 30 MB target:
#   1. empty buffer;
#   2. a RECORDS-record backlog written through EventBuffer (sluice-bench-gateway-buffer --fill);
#   3. right after a restart over a backlog of RESTART_RECORDS events POSTed to the real gateway
#      (/v1/events, 1,000-event NDJSON bodies) which was then SIGKILLed, so LevelDB's write-ahead
#      log (.log in the buffer dir) was never compacted and is replayed at open;
#   4. while draining the --fill backlog to a local sluice-broker (if BIN_DIR has one).
# Each row: VmRSS 3 s after /healthz answers (idle), VmHWM (peak, start-up included), and the
# anonymous/file-backed split of the idle RSS (RssAnon/RssFile).
# Usage: bench/gateway_footprint.sh BIN_DIR [RECORDS [RESTART_RECORDS]]
#   Extra gateway flags (e.g. --set buffer.write_buffer_bytes=4MiB) via GW_EXTRA="..."; another
#   config file (e.g. for an older binary) via GW_CONFIG=FILE.
set -euo pipefail
BIN=$1
N=${2:-1000000}
NR=${3:-200000}
EXTRA=${GW_EXTRA:-}
DIR=$(mktemp -d /tmp/sluice-bench-footprint-XXXXXX)
PID=
BPID=
cleanup() {  # errexit stays on in an EXIT trap: a failed kill must not skip the rm
  set +e
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
  [ -n "$BPID" ] && kill -KILL "$BPID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
start() {  # start DATA_DIR PORT [EU_URL] -> sets PID, returns once /healthz answers
  # shellcheck disable=SC2086
  # The regions' broker URLs come from the environment (config/residency.yaml; an old
  # GW_CONFIG's regions: read the same variables).
  SLUICE_EU_URL="${3:-http://127.0.0.1:1}" SLUICE_US_URL=http://127.0.0.1:1 \
  "$BIN/sluice-gateway" --config "${GW_CONFIG:-config/gateway-de.yaml}" --set gateway.data_dir="$1" \
    --set http.port="$2" --set mqtt.enabled=false --set forward.backoff_initial=10m \
    --set forward.backoff_max=10m $EXTRA >>"$1.out" 2>&1 &
  PID=$!
  for _ in $(seq 1 1200); do
    curl -sf "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "gateway did not answer /healthz: $(tail -5 "$1.out")" >&2
  exit 1
}
mb() { awk -v k="$1" '$1 == k":" {printf "%5.1f MB", $2 / 1024}' "/proc/$PID/status"; }
rss() {  # rss DATA_DIR -> idle VmRSS, VmHWM, RssAnon/RssFile, then stops the gateway
  start "$1" "$(port)"
  sleep 3
  echo "$(mb VmRSS) (peak $(mb VmHWM); anon $(mb RssAnon), file $(mb RssFile))   (target < 30 MB)"
  kill -TERM "$PID"; wait "$PID" || true; PID=
}
logs() { du -cb "$1"/buffer/*.log | awk 'END {printf "%.1f MB", $1 / 1048576}'; }
echo "sluice-gateway binary: $(stat -c %s "$BIN/sluice-gateway") bytes" \
     "($(strip -o "$DIR/stripped" "$BIN/sluice-gateway" && stat -c %s "$DIR/stripped") stripped)"
r=$(rss "$DIR/empty")
echo "idle RSS, empty buffer:                 $r"

"$BIN/sluice-bench-gateway-buffer" --fill "$DIR/full" "$N" >/dev/null
before="buffer $(du -sh "$DIR/full/buffer" | cut -f1), .log $(logs "$DIR/full")"
r=$(rss "$DIR/full")
echo "idle RSS, $N-record backlog (--fill): $r [$before]"
r=$(rss "$DIR/full")
echo "idle RSS, same backlog, next restart:     $r"

# The restart case: ingest over HTTP, SIGKILL, restart.
python3 - "$DIR/body.ndjson" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        f.write('{"device_id":"dev-%d","sensor":"temp","v":%d,"pad":"%s"}\n' % (i, i, "x" * 120))
EOF
p=$(port)
start "$DIR/killed" "$p"
for _ in $(seq 1 $((NR / 1000))); do
  curl -sf -o /dev/null -H 'Content-Type: application/x-ndjson' \
    --data-binary @"$DIR/body.ndjson" "http://127.0.0.1:$p/v1/events"
done
sleep 3
echo "idle RSS after ingesting $NR events over HTTP: $(mb VmRSS) (peak $(mb VmHWM);" \
     "anon $(mb RssAnon), file $(mb RssFile))   (target < 30 MB); then SIGKILL"
kill -KILL "$PID"; wait "$PID" 2>/dev/null || true; PID=
before="buffer $(du -sh "$DIR/killed/buffer" | cut -f1), uncompacted .log $(logs "$DIR/killed")"
r=$(rss "$DIR/killed")
echo "idle RSS, restart after SIGKILL, $NR-event backlog: $r [$before]"

# Draining: the --fill backlog (region eu-central) to a local broker; peak RSS while it drains.
if [ -x "$BIN/sluice-broker" ]; then
  bp=$(port)
  SLUICE_DATA_DIR="$DIR/broker" SLUICE_BROKER_PORT=$bp "$BIN/sluice-broker" \
    --config config/broker-eu-central.yaml >"$DIR/broker.out" 2>&1 &
  BPID=$!
  p=$(port)
  t0=$(date +%s.%N)
  start "$DIR/full" "$p" "http://127.0.0.1:$bp"
  left=unknown
  for _ in $(seq 1 1800); do
    left=$(curl -sf "http://127.0.0.1:$p/metrics" |
           awk '/^sluice_gateway_buffered_records\{.*eu-central/ {print $2}')
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  sleep 3
  echo "draining $N records to a local broker: $left left after" \
       "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s; peak $(mb VmHWM)," \
       "idle after $(mb VmRSS) (anon $(mb RssAnon))   (target < 30 MB)"
  kill -TERM "$PID"; wait "$PID" || true; PID=
  if kill -0 "$BPID" 2>/dev/null; then
    kill -TERM "$BPID"; wait "$BPID" || true; BPID=
  else
    echo "  (the broker died during the run: $(tail -3 "$DIR/broker.out"))"
  fi
fi
