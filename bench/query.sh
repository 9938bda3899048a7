#!/usr/bin/env bash
# Queries of a region (issue 12) beside PostgreSQL 15 with the same rows: starts a private
# PostgreSQL 15 (Debian's postgresql-15; initdb in a temp dir, owned by the postgres user, on a
# free port and a private socket directory) and runs sluice-bench-query against it.
# Usage: bench/query.sh BIN_DIR [RECORDS] [QUERIES]
# Needs postgresql-15 and libpq-dev (installed here when missing; the bench binary is rebuilt
# with libpq then).
set -euo pipefail
BIN=$1
RECORDS=${2:-20000000}
QUERIES=${3:-500}
PG_BIN=/usr/lib/postgresql/15/bin
missing=()
for pkg in postgresql-15 libpq-dev; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -q '^installed$' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a cluster of its own; this bench runs a private one.
  systemctl disable --now postgresql >/dev/null 2>&1 || true
  (cd "$BIN/.." && cmake . >/dev/null && make sluice-bench-query >/dev/null)
fi
DIR=$(mktemp -d /tmp/sluice-bench-query-XXXXXX)
PGDIR=$(mktemp -d /tmp/sluice-bench-pg-XXXXXX)
chown postgres "$PGDIR"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  set +e
  as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$DIR" "$PGDIR"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust >/dev/null
# PostgreSQL's durable defaults (fsync on); enough memory for the indexes to be cached, as
# Sluice's are by the page cache.
as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
  -o "-p $PORT -k $PGDIR -c listen_addresses='' -c shared_buffers=2GB -c maintenance_work_mem=1GB" \
  start >/dev/null
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), $RECORDS records, $QUERIES queries"
"$BIN/sluice-bench-query" --dir "$DIR" --records "$RECORDS" --queries "$QUERIES" \
  --pg "host=$PGDIR port=$PORT user=postgres dbname=postgres"
