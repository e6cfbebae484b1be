#!/usr/bin/env bash
# Downtime of one upgrade, cutover's way against the vendors' way (stop, rename, pull, run),
# measured the same way for both: a prober outside the engine asks the published port every
# 20 ms, and the downtime is the longest stretch without an HTTP 200.
#
# Both pull the same image, a fixture with a 200 MB layer like a real product image, which is
# removed from the engine before every run. Needs the test world (fixtures/world.sh start) and
# /usr/bin/time, for cutover's peak RSS.
#
#   bash bench/downtime.sh [RUNS]      (default 3; prints each run and the medians)
set -euo pipefail
runs=${1:-3}
# shellcheck source=bench/world.sh
. "$(dirname "${BASH_SOURCE[0]}")/world.sh"
work=$(mktemp -d)
port=18790
image_v1=$registry/bench:1
image_v2=$registry/bench:2

build_big() { # TAG VERSION
    local dir
    dir=$(mktemp -d)
    head -c 200000000 /dev/urandom >"$dir/payload"
    printf 'FROM cutover-fixture-base\nCOPY payload /payload\nENV APP_VERSION=%s APP_COLOR=bench\nCMD ["/app/start"]\n' "$2" >"$dir/Dockerfile"
    DOCKER_BUILDKIT=0 $docker build -q -t "$1" "$dir" >/dev/null 2>&1
    $docker push -q "$1" >/dev/null
    rm -rf "$dir"
}
if ! $docker image inspect "$image_v1" >/dev/null 2>&1; then
    echo "building two 200 MB bench images" >&2
    build_big "$image_v1" 1
    build_big "$image_v2" 2
fi

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
# 200 would hide the gap.
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
    "$@" >/dev/null 2>&1
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

start_v1() {
    $docker rm -f app app-old >/dev/null 2>&1 || true
    $docker rmi -f "$image_v2" >/dev/null 2>&1 || true
    $docker run -d --name app --init -p 127.0.0.1:$port:8080 -v bench-data:/data -e TZ=UTC "$image_v1" >/dev/null
    until_serving
}

vendor_way() {
    $docker stop app
    $docker rename app app-old
    $docker pull -q "$image_v2"
    $docker run -d --name app --init -p 127.0.0.1:$port:8080 --volumes-from app-old -e TZ=UTC "$image_v2"
    until_serving
    $docker rm app-old
}

cutover_way() {
    CUTOVER_STATE_DIR=$work/state /usr/bin/time -f '%M' -o "$work/rss" \
        "$cutover" upgrade app --to 2 --yes --health-url "http://127.0.0.1:$port/"
}

vendor=() cut=() rss=()
for i in $(seq 1 "$runs"); do
    start_v1; v=$(probe vendor_way)
    start_v1; c=$(probe cutover_way)
    echo "run $i: vendor way ${v} ms, cutover ${c} ms" >&2
    vendor+=("$v"); cut+=("$c"); rss+=("$(cat "$work/rss")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mv=$(median "${vendor[@]}"); mc=$(median "${cut[@]}")
printf '%-28s %10s\n' "downtime (median of $runs)" "ms"
printf '%-28s %10s\n' "vendor way (stop,rename,pull,run)" "$mv"
printf '%-28s %10s\n' "cutover upgrade" "$mc"
awk -v v="$mv" -v c="$mc" 'BEGIN { if (c > 0) printf "ratio vendor/cutover: %.1fx less downtime with cutover\n", v / c }'
awk -v k="$(median "${rss[@]}")" 'BEGIN { printf "cutover peak RSS (median): %.1f MiB\n", k / 1024 }'
$docker rm -f app app-old >/dev/null 2>&1 || true
$docker volume rm bench-data >/dev/null 2>&1 || true
rm -rf "$work"
