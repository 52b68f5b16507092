#!/bin/sh
# An event loop that waits with a timeout on every turn: redis-server, and redis-benchmark
# making $1 SET and $1 GET requests over a unix socket in the current directory with 16
# connections. Prints the requests' own duration in seconds (/proc/uptime, which no clock
# interception touches), without the server's start.
set -eu
n=${1:-50000}
sock="$PWD/redis.sock"
rm -f "$sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$PWD" >/dev/null &
server=$!
i=0
while [ ! -S "$sock" ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "redis-server did not start" >&2; kill "$server"; exit 1; fi
  sleep 0.05
done
start=$(cut -d' ' -f1 /proc/uptime)
redis-benchmark -s "$sock" -n "$n" -c 16 -t set,get -q >/dev/null
end=$(cut -d' ' -f1 /proc/uptime)
redis-cli -s "$sock" shutdown nosave >/dev/null 2>&1 || kill "$server"
wait "$server" || true
echo "$start $end" | awk '{ printf "%.2f\n", $2 - $1 }'
