#!/usr/bin/env bash
# Gateway footprint: binary size, and resident memory (VmRSS) of an idle sluice-gateway with an
# empty buffer and with a 1,000,000-record backlog (regions unreachable, so nothing drains).
# Usage: bench/gateway_footprint.sh BIN_DIR [RECORDS]
set -euo pipefail
BIN=$1
N=${2:-1000000}
DIR=$(mktemp -d /tmp/sluice-bench-footprint-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rss() {  # rss DATA_DIR -> VmRSS after /healthz answers and 3 s idle
  local p; p=$(port)
  "$BIN/sluice-gateway" --config config/gateway-de.yaml --set gateway.data_dir="$1" \
    --set http.port="$p" --set mqtt.enabled=false --set regions.0.url=http://127.0.0.1:1 \
    --set regions.1.url=http://127.0.0.1:1 --set forward.backoff_initial=10m \
    --set forward.backoff_max=10m >"$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  sleep 3
  awk '/VmRSS/ {print $2" "$3}' "/proc/$pid/status"
  kill -TERM "$pid"; wait "$pid" || true
}
echo "sluice-gateway binary: $(stat -c %s "$BIN/sluice-gateway") bytes" \
     "($(strip -o "$DIR/stripped" "$BIN/sluice-gateway" && stat -c %s "$DIR/stripped") stripped)"
echo "idle RSS, empty buffer:          $(rss "$DIR/empty")   (target < 30 MB)"
"$BIN/sluice-bench-gateway-buffer" --fill "$DIR/full" "$N" >/dev/null
echo "idle RSS, $N-record backlog: $(rss "$DIR/full")" \
     "(buffer on disk: $(du -sh "$DIR/full/buffer" | cut -f1))"
