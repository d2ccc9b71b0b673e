#!/usr/bin/env bash
# Main-thread and memory costs of two requests that used to be disproportionate, for one
# orc-ai module (run it for two builds to compare them side by side):
#   - AI.TENSORGET ... VALUES of a 1 Mi-element FLOAT tensor: the server's extra peak
#     resident memory (VmHWM) and the command's time;
#   - a DAG that LOADs one 16 MiB tensor 200 times, and a PING sent 50 ms after it.
#
#   tests/benches/ai_hardening.sh path/to/liborc_ai.so [module args...]
# Starts its own redis-server on a free port and stops it.
set -euo pipefail
mod=$1
shift
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$dir" --loadmodule "$mod" "$@" \
    --daemonize yes --logfile "$dir/log" --pidfile "$dir/pid"
R=(redis-cli -p "$port")
for _ in $(seq 50); do "${R[@]}" PING >/dev/null 2>&1 && break; sleep 0.1; done
pid=$(cat "$dir/pid")
stop() { "${R[@]}" SHUTDOWN NOSAVE >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap stop EXIT
now() { date +%s.%N; }
hwm() { sed -n 's/^VmHWM:\s*\([0-9]*\).*/\1/p' "/proc/$pid/status"; }

"${R[@]}" AI.TENSORSET f FLOAT 1048576 >/dev/null
h0=$(hwm); t0=$(now)
"${R[@]}" AI.TENSORGET f VALUES >/dev/null || true
t1=$(now); h1=$(hwm)
echo "VALUES of 1 Mi floats: extra peak memory $(((h1 - h0) / 1024)) MiB, $(echo "$t1 - $t0" | bc) s"

"${R[@]}" AI.TENSORSET big UINT8 16777216 >/dev/null
args=(AI.DAGEXECUTE_RO LOAD 200)
for _ in $(seq 200); do args+=(big); done
args+=("|>" AI.TENSORGET big META)
t0=$(now)
(sleep 0.05; p0=$(now); "${R[@]}" PING >/dev/null; p1=$(now); echo "  PING sent meanwhile answered after $(echo "$p1 - $p0" | bc) s") &
"${R[@]}" "${args[@]}" >/dev/null
t1=$(now)
wait
echo "DAG loading one 16 MiB tensor 200 times: answered after $(echo "$t1 - $t0" | bc) s"
