#!/usr/bin/env bash
# The whole maintenance window of a product upgrade, cutover's against the vendors' procedure:
# a product on a real PostgreSQL of a few GB whose new version needs a schema migration that
# takes time (an index built over the largest table), upgraded
#   - the vendors' way, as their upgrade documents tell it: stop the product, back up the
#     database (`pg_dump -Fc` to a file, flushed), pull the new image, rename the old container,
#     run the migration in a one-shot container, run the new version, wait for its first answer;
#   - by `cutover upgrade --backup-db DB_URL --migrate ...`: the server being the product's
#     alone, its data volume copied while it serves and, in the window, only what changed since
#     (a snapshot), the portable backup written from the copy once the new version serves;
#   - the same on a server shared with another database, where the database is copied on its
#     server in the window (cut-srv);
#   - the same with `--backup-dump` (the dump in the window, as before snapshots);
#   - and a new version whose check fails after its migration, rolled back by cutover (what the
#     migration changed copied back from the copy);
#   - `cutover rehearse` first, while the product serves, whose predicted window (its stop,
#     migration and start on a copy of the database) is set beside the window of the upgrade
#     that follows it, as `upgrade --rehearse` runs them.
# The window is the longest stretch without an HTTP 200 as a prober outside the engine sees it
# (every 20 ms). The unavoidable parts are what no tool can skip: the stop, the migration and
# the start until the first answer (the pull is not one, since it can be done before the stop;
# the backup is not one either, once it is taken at the storage's speed). Prints, for each size,
# each window, the parts, each window divided by the parts (the goals: an upgrade at most 1.25,
# a rollback at most 2), cutover's peak memory and the disk the backup took.
#
# Needs the test world (fixtures/world.sh start) and /usr/bin/time.
#
#   bash bench/window.sh [DB_GB...]      (default 2; `2 8` shows the window not growing with size)
set -euo pipefail
sizes=("${@:-2}")
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
image_v3=$registry/bench-window:3
cleanup() {
    $docker rm -f app app-old app-migrate bench-window-db app-cutover-rehearse-db app-cutover-rehearse-app app-cutover-rehearse-migrate >/dev/null 2>&1 || true
    $docker network rm app-cutover-rehearse >/dev/null 2>&1 || true
    $docker volume rm app-cutover-rehearse-db >/dev/null 2>&1 || true
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
build_product 3

$docker network create $net >/dev/null
$docker run -d --name bench-window-db --network $net --network-alias db -v bench-window-pg:/var/lib/postgresql/data \
    -e POSTGRES_USER=app -e POSTGRES_PASSWORD=bench-pw -e POSTGRES_DB=app "$registry/postgres:15" >/dev/null
psql_db() { $docker exec bench-window-db psql -h /tmp -U app -d app "$@"; }
until psql_db -qAtc 'select 1' >/dev/null 2>&1; do sleep 0.3; done

fill() { # GB
    # About 100 bytes a row on disk with its tuple header: 10 million rows a GB.
    rows=$(awk -v gb="$1" 'BEGIN { printf "%d", gb * 10000000 }')
    echo "filling the database with $1 GB" >&2
    psql_db -qc "DROP TABLE IF EXISTS events" >/dev/null
    psql_db -qc "CREATE TABLE events AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b, now() AS at FROM generate_series(1, $rows) g" >/dev/null
    db_bytes=$(psql_db -Atc "SELECT pg_database_size('app')")
}

start_v1() {
    $docker rm -f app app-old >/dev/null 2>&1 || true
    $docker rmi -f "$image_v2" >/dev/null 2>&1 || true
    $docker volume rm bench-window-data >/dev/null 2>&1 || true
    psql_db -qc "SET client_min_messages = warning; DROP INDEX IF EXISTS events_a"
    rm -rf "${work:?}/backups"/* "$work/plain.pgdump" "$work/state"
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
    local s t0 t1 t2 t3 t4
    s=$(now_ms)
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
    echo "$((t0 - s)) $((t1 - t0)) $((t3 - t2)) $((t4 - t3))" >"$work/parts"
}

cutover_way() { # TAG EXTRA...
    local tag=$1
    shift
    CUTOVER_STATE_DIR=$work/state /usr/bin/time -f '%M' -o "$work/rss" \
        "$cutover" upgrade app --to "$tag" --yes --json --backup-db DB_URL --backup-dir "$work/backups" \
        --migrate /app/migrate-db --migrate-timeout 1h --health-url "http://127.0.0.1:$port/" "$@" >"$work/report.json" || true
}

# The rehearsal's predicted window, then the window of the upgrade that follows it.
rehearsed() {
    start_v1
    CUTOVER_STATE_DIR=$work/state "$cutover" rehearse app --to 2 --yes --json --backup-db DB_URL \
        --migrate /app/migrate-db --migrate-timeout 1h --health-url "http://127.0.0.1:$port/" >"$work/rehearsal.json" \
        || { echo "the rehearsal failed:" >&2; cat "$work/rehearsal.json" >&2; exit 1; }
    predicted_ms=$(tr -d '\n ' <"$work/rehearsal.json" | grep -o '"window_ms":[0-9]*' | grep -o '[0-9]*$')
    copy_migrate_ms=$(tr -d '\n ' <"$work/rehearsal.json" | grep -o '"migrations":\[{[^]]*' | grep -o '"ms":[0-9]*' | grep -o '[0-9]*$')
    rehearsed_window=$(probe cutover_way 2)
    grep -q '"outcome": "succeeded"' "$work/report.json" || { echo "the upgrade after the rehearsal failed" >&2; exit 1; }
    real_migrate_ms=$(step_ms migrate)
}

# A step's own time in cutover's report.
step_ms() { # STEP
    tr -d '\n' <"$work/report.json" | grep -o "\"millis\": [0-9]*,[^}]*\"step\": \"$1\"" | grep -o '^"millis": [0-9]*' | grep -o '[0-9]*$' | head -1
}

# The window of a cutover run, with its report's outcome checked.
measured() { # OUTCOME TAG EXTRA...
    local want=$1 window
    shift
    start_v1
    window=$(probe cutover_way "$@")
    grep -q "\"outcome\": \"$want\"" "$work/report.json" || { echo "cutover $* did not end $want:" >&2; cat "$work/report.json" >&2; exit 1; }
    echo "$window"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { echo $(($1 >> 20)); }

printf '%6s %9s | %8s %8s %8s %8s %8s | %8s %8s %8s %5s | %8s %5s | %7s %9s %7s %9s %6s %8s | %9s %8s %9s %8s %8s\n' \
    "DB MiB" "index s" "vendor" "cut-dump" "cut-srv" "cutover" "parts" "pre ms" "snap ms" "after ms" "up/p" "rollback" "rb/p" "vendor" "cut-dump" "cut-srv" "cutover" "RSS" "backup" "predicted" "after" "pred/real" "mig copy" "mig real"
printf '%6s %9s | %8s %8s %8s %8s %8s | %8s %8s %8s %5s | %8s %5s | %7s %9s %7s %9s %6s %8s | %9s %8s %9s %8s %8s\n' \
    "" "" "ms" "ms" "ms" "ms" "ms" "" "" "" "" "ms" "" "/parts" "/parts" "/parts" "/parts" "MiB" "MiB" "ms" "ms" "" "ms" "ms"
for gb in "${sizes[@]}"; do
    fill "$gb"
    start_v1
    vendor_window=$(probe vendor_way)
    read -r stop_ms dump_ms migrate_ms start_ms <"$work/parts"
    parts=$((stop_ms + migrate_ms + start_ms))
    dump_window=$(measured succeeded 2 --backup-dump)
    # Another database on the server: the product's is copied on the server instead.
    psql_db -qc "CREATE DATABASE billing"
    server_window=$(measured succeeded 2)
    grep -q '"step": "snapshot"' "$work/report.json" || { echo "the shared server's copy was not taken on it" >&2; exit 1; }
    psql_db -qc "DROP DATABASE billing"
    cutover_window=$(measured succeeded 2)
    grep -q '"step": "snapshot_volume"' "$work/report.json" || { echo "the server's volume was not copied" >&2; exit 1; }
    precopy_ms=$(step_ms precopy)
    snapshot_ms=$(step_ms snapshot_volume)
    after_ms=$(step_ms backup_from_snapshot)
    rss_kib=$(cat "$work/rss")
    backup_bytes=$(du -sb "$work/backups" | cut -f1)
    # Version 3 passes its migration, then its check fails: rolled back onto the copy.
    rollback_window=$(measured rolled_back 3 --exec-after false)
    grep -q 'back from the copy' "$work/report.json" || { echo "the rollback did not copy the data back" >&2; exit 1; }
    rehearsed
    printf '%6d %9.1f | %8d %8d %8d %8d %8d | %8s %8s %8s %5s | %8d %5s | %7s %9s %7s %9s %6d %8d | %9d %8d %9s %8d %8d\n' \
        "$(mib "$db_bytes")" "$(awk -v m="$migrate_ms" 'BEGIN { print m / 1000 }')" \
        "$vendor_window" "$dump_window" "$server_window" "$cutover_window" "$parts" "$precopy_ms" "$snapshot_ms" "$after_ms" \
        "$(ratio "$cutover_window" "$parts")" "$rollback_window" "$(ratio "$rollback_window" "$parts")" \
        "$(ratio "$vendor_window" "$parts")" "$(ratio "$dump_window" "$parts")" "$(ratio "$server_window" "$parts")" "$(ratio "$cutover_window" "$parts")" \
        $((rss_kib / 1024)) "$(mib "$backup_bytes")" \
        "$predicted_ms" "$rehearsed_window" "$(ratio "$predicted_ms" "$rehearsed_window")" "$copy_migrate_ms" "$real_migrate_ms"
done
echo "parts: the stop, the migration (CREATE INDEX) and the start until the first answer, timed in the vendor's run." >&2
echo "predicted: the window cutover rehearse foretold (stop, migration and start until it first answered, on a copy; no backup); after: the window of the upgrade that followed it, backup included; mig copy, mig real: the migration's time on the copy and in that upgrade." >&2
echo "pre ms: the volume's first copy, before the window; snap ms: what changed since, copied in the window; after ms: the portable backup written from the copy once the new version served." >&2
