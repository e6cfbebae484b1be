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
# shellcheck source=bench/probe.sh
. "$(dirname "${BASH_SOURCE[0]}")/probe.sh"
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
