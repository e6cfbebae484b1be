# Sourced by the benchmarks that measure a service's downtime from outside the engine: a prober
# asks 127.0.0.1:$port every 20 ms and logs each answer's HTTP status to $work/probe.

# The HTTP status of GET / on the published port, 000 when nothing answers. A redirection on a
# compound command, not `exec`: a refused connection must not end the shell.
http_code() {
    local code=000
    { printf 'GET / HTTP/1.0\r\n\r\n' >&3; read -r -t 1 _ code _ <&3; } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$port"
    echo "${code:-000}"
}

# docker-proxy accepts connections before the app listens: wait for a real answer.
until_serving() { until [ "$(http_code)" = 200 ]; do sleep 0.02; done; }

# Prints the longest gap (ms) between HTTP 200 answers while "$@" runs, and until the prober
# itself saw the service answer again: an attempt that docker-proxy accepted while nothing
# listened behind it can hold the prober for up to a second, and stopping it before its next
# 200 would hide the gap. What "$@" prints goes to $work/probed.out.
probe() {
    local log=$work/probe
    : >"$log"
    (
        while :; do
            echo "$(date +%s%3N) $(http_code)" >>"$log"
            sleep 0.02
        done
    ) &
    local prober=$!
    sleep 0.5
    "$@" >"$work/probed.out" 2>&1
    local ended
    ended=$(date +%s%3N)
    for _ in $(seq 1 300); do
        awk -v t="$ended" '$1 > t && $2 == 200 { found = 1 } END { exit !found }' "$log" && break
        sleep 0.1
    done
    sleep 0.2
    kill $prober; wait $prober 2>/dev/null || true
    awk '$2 == 200 { if (last && $1 - last > max) max = $1 - last; last = $1 } END { print max + 0 }' "$log"
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }
