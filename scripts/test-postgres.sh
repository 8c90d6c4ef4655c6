#!/usr/bin/env bash
# A throw-away PostgreSQL for the test run, from Debian's packages, on 127.0.0.1 and a free port.
#   scripts/test-postgres.sh start   -> prints "URL DIR" (asyncpg URL, data directory)
#   scripts/test-postgres.sh stop DIR
# PostgreSQL refuses to run as root, so as root the server runs as the 'postgres' user in a
# directory it owns. fsync is off (test data dies with the run) unless HPOLL_PG_FSYNC=on, which the
# benchmarks set so their figures are honest. HPOLL_PG_OPTS adds server settings ("-c name=value ...").
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    bin=$(pg_bin)
    if [ -z "$bin" ]; then
        [ "$(id -u)" = 0 ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
        echo "[postgres] installing Debian's postgresql" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin=$(pg_bin)
    fi
    dir=$(mktemp -d /tmp/hpoll-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${HPOLL_PG_FSYNC:-off} -c max_connections=200 ${HPOLL_PG_OPTS:-}" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql+asyncpg://postgres@127.0.0.1:$port/postgres $dir"
    ;;
stop)
    dir=${2:?usage: $0 stop DIR}
    bin=$(pg_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
