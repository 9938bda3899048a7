#!/usr/bin/env bash
# The front door (issue 10): durable single-event ingest of the real sluice-gateway binary
# (POST /v1/events, each 202 after its fsync; buffer.sync: always) beside Redis 7 XADD with
# appendfsync always (each reply after its fsync) at the same client counts, driven by wrk and by
# redis-benchmark on the same 2 cores; then 1,000-event NDJSON bodies beside XADD pipelined 1,000
# deep. Both sides fsync every acknowledged write and group-commit across clients. Beside Redis
# over RESP, the same Redis behind an HTTP front end (webdis, Debian), driven by wrk exactly as
# the gateway: HTTP in, durable append, answer after the fsync. Last, each side without its
# per-request fsync (its ceiling on this machine), and durable / ceiling.
# Usage: bench/front_door.sh BIN_DIR [SECONDS]
# SLUICE_BENCH_GATEWAY_SETS="key=value ...": extra --set for the gateway (experiments, e.g.
# "http.threads=2").
# Needs wrk, redis-server, redis-tools and webdis (Debian packages; installed here when missing).
set -euo pipefail
BIN=$1
SECS=${2:-10}
missing=()
for pkg in wrk redis-server redis-tools curl webdis; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -q '^installed$' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start a system Redis on 6379 and a webdis; this bench runs its own.
  systemctl disable --now redis-server >/dev/null 2>&1 || true
  systemctl disable --now webdis >/dev/null 2>&1 || true
fi
DIR=$(mktemp -d /tmp/sluice-bench-frontdoor-XXXXXX)
GW=
RD=
WD=
cleanup() {
  set +e
  [ -n "$GW" ] && kill -KILL "$GW" 2>/dev/null && wait "$GW" 2>/dev/null
  [ -n "$WD" ] && kill -KILL "$WD" 2>/dev/null && wait "$WD" 2>/dev/null
  [ -n "$RD" ] && kill -KILL "$RD" 2>/dev/null && wait "$RD" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# 200-byte event, and a 1,000-event NDJSON body of them.
EVENT='{"device_id":"pump-0007","sensor":"temperature","country":"DE","ts":1714564800000,"v":21.5,"unit":"C","fw":"1.4.2","site":"hall-3","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
python3 - "$DIR" "$EVENT" <<'EOF'
import sys
d, ev = sys.argv[1], sys.argv[2]
open(d + "/one.lua", "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' % ev)
open(d + "/put.lua", "w").write(
    'wrk.method = "PUT"\nwrk.path = "/XADD/bench/*/v"\nwrk.body = [[%s]]\n' % ev)
body = "\n".join([ev] * 1000) + "\n"
open(d + "/bulk.lua", "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/x-ndjson"\nwrk.body = [[%s]]\n' % body)
EOF

GP=$(port)
EXTRA=()
for kv in ${SLUICE_BENCH_GATEWAY_SETS:-}; do EXTRA+=(--set "$kv"); done
# start_gateway NAME [--set k=v ...]: a gateway on $GP with data under $DIR/NAME, whose regions
# are unreachable (it only buffers), in the background as $GW.
start_gateway() {
  local name=$1
  shift
  SLUICE_EU_URL=http://127.0.0.1:1 SLUICE_US_URL=http://127.0.0.1:1 \
  "$BIN/sluice-gateway" --config config/gateway-de.yaml "${EXTRA[@]}" "$@" \
    --set gateway.data_dir="$DIR/$name" --set http.port="$GP" --set mqtt.enabled=false \
    --set forward.backoff_initial=10m --set forward.backoff_max=10m \
    --set buffer.min_free_bytes=1MiB >"$DIR/$name.log" 2>&1 &
  GW=$!
}
start_gateway gw
RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --dir "$DIR" --appendonly yes --appendfsync always \
  --save "" --daemonize no >"$DIR/redis.log" 2>&1 &
RD=$!
# The same Redis behind an HTTP front end: webdis (Debian) turns PUT /XADD/bench/*/v with the
# event as the body into XADD bench * v <event> and answers once Redis replied (after its fsync).
WP=$(port)
printf '{"redis_host":"127.0.0.1","redis_port":%s,"http_host":"127.0.0.1","http_port":%s,"threads":2,"daemonize":false,"database":0,"verbosity":0,"logfile":"%s"}\n' \
  "$RP" "$WP" "$DIR/webdis.log" >"$DIR/webdis.json"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$GP/healthz" >/dev/null 2>&1 && redis-cli -p "$RP" ping >/dev/null 2>&1 && break
  sleep 0.1
done
webdis "$DIR/webdis.json" >"$DIR/webdis.out" 2>&1 &
WD=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$WP/PING" >/dev/null 2>&1 && break
  sleep 0.1
done

wrk_rate() {  # wrk_rate CONNECTIONS SCRIPT [SECONDS [URL]] -> 2xx answers/s (refusals do not count)
  local out
  out=$(wrk -t2 -c"$1" -d"${3:-$SECS}s" -s "$DIR/$2" "${4:-http://127.0.0.1:$GP/v1/events}")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "front_door: the gateway refused requests: $(grep Non-2xx <<<"$out")" >&2
  fi
  awk '/requests in/ { n = $1; t = $4; sub(/s,?$/, "", t) }
       /Non-2xx/ { bad = $NF }
       END { if (t > 0) printf "%d", (n - bad) / t }' <<<"$out"
}
redis_rate() {  # redis_rate CLIENTS PIPELINE REQUESTS -> XADDs/s
  redis-benchmark -p "$RP" -c "$1" -P "$2" -n "$3" \
    -q XADD bench '*' v "$EVENT" 2>/dev/null | tr '\r' '\n' | awk '/requests per second/ {
      for (i = 1; i <= NF; i++) if ($(i+1) ~ /^requests/) { printf "%d", $i; exit } }'
}
fsync_probe() {  # the machine's limit: 200-byte append + fdatasync, one writer
  python3 - "$DIR/probe" <<'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n, t0 = 0, time.time()
while time.time() - t0 < 2:
    os.write(fd, b"x" * 200); os.fdatasync(fd); n += 1
print(int(n / (time.time() - t0)))
EOF
}

echo "machine limit: one writer, 200 B append + fdatasync: $(fsync_probe) /s"
printf '%-44s %12s %14s %7s %14s %7s\n' "durable single-event ingest" "sluice/s" "redis XADD/s" \
  "ratio" "webdis+redis/s" "ratio"
declare -A DS DR DW
for c in 8 64; do
  s=$(wrk_rate "$c" one.lua)
  r=$(redis_rate "$c" 1 100000)
  w=$(wrk_rate "$c" put.lua "$SECS" "http://127.0.0.1:$WP")
  DS[$c]=$s
  DR[$c]=$r
  DW[$c]=$w
  printf '%-44s %12s %14s %6s%% %14s %6s%%\n' "$c clients, one event per request" "$s" "$r" \
    "$(( r > 0 ? 100 * s / r : 0 ))" "$w" "$(( w > 0 ? 100 * s / w : 0 ))"
done
# 3 s: at ~1 M events/s a longer run fills the buffer's 1 GiB (buffer.max_bytes) and the rest
# would be refused (503), which is not what this row measures.
s=$(wrk_rate 8 bulk.lua 3)
r=$(redis_rate 8 1000 2000000)
printf '%-44s %12s %14s %6s%%\n' "8 clients, 1,000 events per request" "$(( s * 1000 ))" "$r" \
  "$(( r > 0 ? 100 * s * 1000 / r : 0 ))"
echo "(sluice: events/s acknowledged 202 after fsync; redis: XADD replies with appendfsync always;"
echo " webdis+redis: the same XADD as an HTTP PUT through webdis, wrk as for sluice;"
echo " bulk redis row: XADD pipelined 1,000 deep by 8 clients)"

# The fair part of the comparison: each side's own ceiling without its per-request fsync (the
# gateway with buffer.sync: interval, Redis with appendfsync no), same clients, same run. What a
# front end keeps of its ceiling when it fsyncs every answer is what its durability costs; the
# ceilings themselves compare the front ends (HTTP/1.1 with JSON validation vs RESP).
kill -KILL "$GW" 2>/dev/null; wait "$GW" 2>/dev/null || true
GP=$(port)
start_gateway gw2 --set buffer.sync=interval
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$GP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$RP" config set appendfsync no >/dev/null
echo
printf '%-44s %12s %14s %7s %14s\n' "without per-request fsync (each side's ceiling)" "sluice/s" \
  "redis XADD/s" "" "webdis+redis/s"
for c in 8 64; do
  s=$(wrk_rate "$c" one.lua)
  r=$(redis_rate "$c" 1 100000)
  w=$(wrk_rate "$c" put.lua "$SECS" "http://127.0.0.1:$WP")
  printf '%-44s %12s %14s %7s %14s\n' "$c clients, one event per request" "$s" "$r" "" "$w"
  printf '%-44s %11s%% %13s%% %7s %13s%%\n' "  durable / ceiling, $c clients" \
    "$(( s > 0 ? 100 * DS[$c] / s : 0 ))" "$(( r > 0 ? 100 * DR[$c] / r : 0 ))" "" \
    "$(( w > 0 ? 100 * DW[$c] / w : 0 ))"
done
echo "(sluice ceiling: buffer.sync: interval, synced every buffer.sync_interval, 1 s; redis: appendfsync no)"
