#!/usr/bin/env bash
# The whole maintenance window of a product upgrade, cutover's against the vendors' procedure:
# a product on a real PostgreSQL of a few GB whose new version needs a schema migration that
# takes time (an index built over the largest table), upgraded
#   - the vendors' way, as their upgrade documents tell it: stop the product, back up the
#     database (`pg_dump -Fc` to a file, flushed), pull the new image, rename the old container,
#     run the migration in a one-shot container, run the new version, wait for its first answer;
#   - by `cutover upgrade --backup-db DB_URL --migrate ...`.
# The window is the longest stretch without an HTTP 200 as a prober outside the engine sees it
# (every 20 ms). The unavoidable parts are what no tool can skip: the dump, the migration and the
# start until the first answer; the pull is not one, since it can be done before the stop. Prints
# both windows, the parts of each run, cutover's window divided by the sum of its own parts (what
# its machinery adds; the goal is at most 1.1) and by the vendors' parts, and the throughput of
# other ways to dump the database.
#
# Needs the test world (fixtures/world.sh start) and /usr/bin/time.
#
#   bash bench/window.sh [DB_GB]      (default 2)
set -euo pipefail
gb=${1:-2}
# About 100 bytes a row on disk with its tuple header: 10 million rows a GB.
rows=$(awk -v gb="$gb" 'BEGIN { printf "%d", gb * 10000000 }')
# shellcheck source=bench/world.sh
. "$(dirname "${BASH_SOURCE[0]}")/world.sh"
# shellcheck source=bench/probe.sh
. "$(dirname "${BASH_SOURCE[0]}")/probe.sh"
work=$(mktemp -d)
port=18791
net=bench-window-net
db_url=postgres://app:bench-pw@db:5432/app
image_v1=$registry/bench-window:1
image_v2=$registry/bench-window:2
cleanup() {
    $docker rm -f app app-old app-migrate bench-window-db >/dev/null 2>&1 || true
    $docker network rm $net >/dev/null 2>&1 || true
    $docker volume rm bench-window-pg bench-window-data >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$work/backups"

# The product: the fixtures' app (busybox httpd) on top of the PostgreSQL image, for its psql;
# its migration builds an index, as schema migrations of large tables do.
build_product() { # VERSION
    local dir
    dir=$(mktemp -d)
    printf '#!/bin/sh\nset -e\necho "building index events_a"\npsql "$DB_URL" -v ON_ERROR_STOP=1 -qc "CREATE INDEX IF NOT EXISTS events_a ON events (a)"\necho "schema is at %s"\n' "$1" >"$dir/migrate-db"
    cat >"$dir/Dockerfile" <<DOCKERFILE
FROM $registry/postgres:15
USER 0
COPY --from=cutover-fixture-base /app /app
COPY migrate-db /app/migrate-db
RUN mkdir -p /data /www && chown 1000:1000 /data /www /app/conf && chmod 755 /app/migrate-db
ENV APP_VERSION=$1 APP_COLOR=bench
VOLUME /data
EXPOSE 8080
ENTRYPOINT []
CMD ["/app/start"]
DOCKERFILE
    DOCKER_BUILDKIT=0 $docker build -q -t "$registry/bench-window:$1" "$dir" >/dev/null
    $docker push -q "$registry/bench-window:$1" >/dev/null
    rm -rf "$dir"
}
build_product 1
build_product 2

$docker network create $net >/dev/null
$docker run -d --name bench-window-db --network $net --network-alias db -v bench-window-pg:/var/lib/postgresql/data \
    -e POSTGRES_USER=app -e POSTGRES_PASSWORD=bench-pw -e POSTGRES_DB=app "$registry/postgres:15" >/dev/null
psql_db() { $docker exec bench-window-db psql -h /tmp -U app -d app "$@"; }
until psql_db -qAtc 'select 1' >/dev/null 2>&1; do sleep 0.3; done
echo "filling the database with $gb GB" >&2
psql_db -qc "CREATE TABLE events AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b, now() AS at FROM generate_series(1, $rows) g" >/dev/null
db_bytes=$(psql_db -Atc "SELECT pg_database_size('app')")

start_v1() {
    $docker rm -f app app-old >/dev/null 2>&1 || true
    $docker rmi -f "$image_v2" >/dev/null 2>&1 || true
    $docker volume rm bench-window-data >/dev/null 2>&1 || true
    psql_db -qc "SET client_min_messages = warning; DROP INDEX IF EXISTS events_a"
    rm -rf "${work:?}/backups"/* "$work/plain.pgdump"
    # Every run starts with the table's pages out of the server's cache, as after weeks of
    # other work; dropping the host's page cache would also slow the engine's own files.
    $docker restart bench-window-db >/dev/null
    until psql_db -qAtc 'select 1' >/dev/null 2>&1; do sleep 0.3; done
    $docker run -d --name app --init --network $net -p 127.0.0.1:$port:8080 -v bench-window-data:/data \
        -e DB_URL=$db_url "$image_v1" >/dev/null
    until_serving
}

# The vendors' procedure, each part timed into $work/parts.
vendor_way() {
    local t0 t1 t2 t3 t4
    $docker stop app >/dev/null
    t0=$(now_ms)
    $docker exec bench-window-db pg_dump -h /tmp -U app -d app -Fc | dd of="$work/plain.pgdump" bs=1M conv=fsync status=none
    t1=$(now_ms)
    $docker pull -q "$image_v2" >/dev/null
    $docker rename app app-old
    t2=$(now_ms)
    $docker run --rm --name app-migrate --network $net --volumes-from app-old -e DB_URL=$db_url "$image_v2" /app/migrate-db >/dev/null
    t3=$(now_ms)
    $docker run -d --name app --init --network $net -p 127.0.0.1:$port:8080 --volumes-from app-old -e DB_URL=$db_url "$image_v2" >/dev/null
    until_serving
    t4=$(now_ms)
    $docker rm app-old >/dev/null
    echo "$((t1 - t0)) $((t3 - t2)) $((t4 - t3))" >"$work/parts"
}

cutover_way() {
    CUTOVER_STATE_DIR=$work/state /usr/bin/time -f '%M' -o "$work/rss" \
        "$cutover" upgrade app --to 2 --yes --json --backup-db DB_URL --backup-dir "$work/backups" \
        --migrate /app/migrate-db --migrate-timeout 1h --health-url "http://127.0.0.1:$port/" >"$work/report.json"
}

# A step's own time in cutover's report.
step_ms() { # STEP
    tr -d '\n' <"$work/report.json" | grep -o "\"millis\": [0-9]*,[^}]*\"step\": \"$1\"" | grep -o '^"millis": [0-9]*' | grep -o '[0-9]*$' | head -1
}

start_v1
vendor_window=$(probe vendor_way)
read -r dump_ms migrate_ms start_ms <"$work/parts"
start_v1
cutover_window=$(probe cutover_way)
cut_backup_ms=$(step_ms backup)
cut_migrate_ms=$(step_ms migrate)
cut_start_ms=$(($(step_ms start) + $(step_ms await_healthy)))
unavoidable=$((dump_ms + migrate_ms + start_ms))
cut_unavoidable=$((cut_backup_ms + cut_migrate_ms + cut_start_ms))

# Other ways to dump the same database, each to a flushed file: no compression in the server
# with compression on the host, and the directory format with parallel jobs.
dump_ms_of() { # COMMAND...
    local t0
    t0=$(now_ms)
    "$@"
    echo $(($(now_ms) - t0))
}
fc_z0_host() {
    $docker exec bench-window-db pg_dump -h /tmp -U app -d app -Fc -Z0 | zstd -q -T0 -3 | dd of="$work/z0.pgdump.zst" bs=1M conv=fsync status=none
}
fd_jobs() {
    rm -rf "$work/dir"
    mkdir -p "$work/dir" && chmod 777 "$work/dir"
    $docker run --rm --network $net -v "$work/dir:/out" -e PGPASSWORD=bench-pw --entrypoint pg_dump "$registry/postgres:15" \
        -h db -U app -d app -Fd -j "$(nproc)" -f /out/dump
    sync -f "$work/dir"
}
fc_plain_ms=$(dump_ms_of bash -c "$docker exec bench-window-db pg_dump -h /tmp -U app -d app -Fc | dd of=$work/fc.pgdump bs=1M conv=fsync status=none")
command -v zstd >/dev/null && fc_z0_ms=$(dump_ms_of fc_z0_host) || fc_z0_ms=
fd_ms=$(dump_ms_of fd_jobs)

mbps() { awk -v b="$db_bytes" -v ms="$1" 'BEGIN { if (ms) printf "%.0f MB/s", (b / 1048576) / (ms / 1000); else print "-" }'; }
printf 'database %d MiB, migration: CREATE INDEX over %d rows\n' $((db_bytes >> 20)) "$rows"
printf '%-46s %10s\n' "maintenance window" "ms"
printf '%-46s %10s\n' "vendors' procedure (stop, dump, pull, migrate, run)" "$vendor_window"
printf '%-46s %10s\n' "cutover upgrade" "$cutover_window"
printf '%-46s %10s\n' "vendors' parts (dump+migration+start)" "$unavoidable ($dump_ms + $migrate_ms + $start_ms)"
printf '%-46s %10s\n' "cutover's parts (backup+migration+start)" "$cut_unavoidable ($cut_backup_ms + $cut_migrate_ms + $cut_start_ms)"
awk -v v="$vendor_window" -v c="$cutover_window" -v u="$unavoidable" -v o="$cut_unavoidable" 'BEGIN {
    printf "ratio vendor/cutover: %.2fx less window with cutover\n", v / c
    printf "cutover window / its own parts: %.2f (goal <= 1.1); / the vendor procedure parts: %.2f\n", c / o, c / u }'
printf 'dumps of the same database: pg_dump -Fc %s; -Fc -Z0 compressed on the host (zstd -T0) %s; -Fd -j %d %s\n' \
    "$(mbps "$fc_plain_ms")" "$(mbps "$fc_z0_ms")" "$(nproc)" "$(mbps "$fd_ms")"
echo "cutover peak RSS: $(($(cat "$work/rss") / 1024)) MiB"
