#!/bin/sh
# A database server of many processes: PostgreSQL 15 (initdb, pg_ctl), pgbench filling
# its tables at scale 2 and then 4 clients in 2 threads making $1 TPC-B-like transactions
# each over TCP, and a fast shutdown. The backends keep their timeouts' itimer armed and
# read the clock around every statement. Prints the transactions' own duration in
# seconds (/proc/uptime, which no clock interception touches). Runs as root: the
# server runs as the package's user, in a directory of its own under /tmp.
set -eu
n=${1:-1500}
bin=/usr/lib/postgresql/15/bin
if [ "$(id -u)" -eq 0 ]; then
  dir=$(mktemp -d /tmp/uwrx-pg-load.XXXXXX)
  chown postgres:postgres "$dir"
  status=0
  (cd "$dir" && setpriv --reuid=postgres --regid=postgres --init-groups sh "$(realpath "$0")" "$n") || status=$?
  rm -rf "$dir"
  exit "$status"
fi
"$bin/initdb" -D data -U postgres --no-sync -A trust >initdb.log
"$bin/pg_ctl" -D data -o "-c listen_addresses=127.0.0.1 -c port=5433 -k $PWD" -l server.log -w start >/dev/null
"$bin/pgbench" -i -q -h 127.0.0.1 -p 5433 -U postgres -s 2 postgres 2>init.log
start=$(cut -d' ' -f1 /proc/uptime)
"$bin/pgbench" -h 127.0.0.1 -p 5433 -U postgres -c 4 -j 2 -t "$n" postgres >bench.log 2>&1
end=$(cut -d' ' -f1 /proc/uptime)
"$bin/pg_ctl" -D data -m fast stop >/dev/null
grep -q "actually processed: $((n * 4))/$((n * 4))" bench.log
echo "$start $end" | awk '{ printf "%.2f\n", $2 - $1 }'
