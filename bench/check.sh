#!/usr/bin/env bash
# Cost of `cutover check --all` for 100 containers over 20 repositories on the loopback
# registry: wall time and registry requests, next to the number of repositories.
# Goal: at most 2 requests per repository (no min_age here; release notes ask nothing), and
# under a second.
#
#   bash bench/check.sh [RUNS]    (default 5; prints each run and the median wall time)
set -euo pipefail
runs=${1:-5}
# shellcheck source=bench/world.sh
. "$(dirname "${BASH_SOURCE[0]}")/world.sh"
repos=20 containers=100

echo "pushing $repos repositories and starting $containers containers" >&2
for r in $(seq 0 $((repos - 1))); do
    for tag in 1.0.0 1.0.1 1.1.0 2.0.0; do
        $docker tag "$registry/demo:1" "$registry/bench-r$r:$tag"
        $docker push -q "$registry/bench-r$r:$tag" >/dev/null
    done
done
cleanup() { $docker ps -aq --filter name=bench-c | xargs -r $docker rm -f >/dev/null; }
trap cleanup EXIT
cleanup
for c in $(seq 0 $((containers - 1))); do
    # Half follow patch releases, half minor ones; every fifth follows its tag's digest instead.
    policy=patch; [ $((c % 2)) -eq 0 ] && policy=minor; [ $((c % 5)) -eq 0 ] && policy=digest
    $docker run -d --init --name "bench-c$c" -l cutover.enable=true -l cutover.policy=$policy \
        "$registry/bench-r$((c % repos)):1.0.0" >/dev/null
done

times=()
for i in $(seq 1 "$runs"); do
    start=$(date +%s%N)
    out=$("$cutover" check --all --json)
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    requests=$(grep -o '"registry_requests": [0-9]*' <<<"$out" | grep -o '[0-9]*$')
    checked=$(grep -c '"container":' <<<"$out")
    echo "run $i: $checked containers, $ms ms, $requests registry requests" >&2
    times+=("$ms")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
printf '%-34s %s\n' "containers checked" "$checked"
printf '%-34s %s\n' "repositories" "$repos"
printf '%-34s %s\n' "registry requests" "$requests"
printf '%-34s %s\n' "requests per repository" "$(awk -v r="$requests" -v n="$repos" 'BEGIN { printf "%.2f", r / n }')"
printf '%-34s %s ms\n' "wall time (median of $runs)" "$median"
