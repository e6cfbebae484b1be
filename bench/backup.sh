#!/usr/bin/env bash
# Backup throughput, cutover's against the plain tools on the same data: a PostgreSQL database
# dumped by `cutover backup --backup-db` against `docker exec pg_dump -Fc`, and a volume backed
# up by `cutover backup --backup-volumes` against `docker cp` of the same mount, both written to
# a file and flushed to disk (fsync), as a backup must be before a migration may destroy the
# data. cutover also compresses, checksums and reads back what it wrote. Prints the throughputs,
# their ratios (cutover / plain; the goal is at least 0.8) and cutover's peak RSS.
#
# Needs the test world (fixtures/world.sh start).
#
#   bash bench/backup.sh [DB_ROWS_MILLIONS] [VOLUME_MIB]      (default 4 and 1024)
set -euo pipefail
rows=${1:-4}
volume_mib=${2:-1024}
# shellcheck source=bench/world.sh
. "$(dirname "${BASH_SOURCE[0]}")/world.sh"
work=$(mktemp -d)
net=bench-backup-net
cleanup() {
    $docker rm -f bench-app bench-db >/dev/null 2>&1 || true
    $docker network rm $net >/dev/null 2>&1 || true
    $docker volume rm bench-backup-data bench-backup-pg >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$work"

$docker network create $net >/dev/null
$docker run -d --name bench-db --network $net --network-alias db -v bench-backup-pg:/var/lib/postgresql/data \
    -e POSTGRES_USER=app -e POSTGRES_PASSWORD=bench-pw -e POSTGRES_DB=app "$registry/postgres:15" >/dev/null
until $docker exec bench-db pg_isready -q -h /tmp -U app 2>/dev/null && $docker exec bench-db psql -h /tmp -U app -d app -c 'select 1' >/dev/null 2>&1; do sleep 0.3; done
echo "filling the database with $rows million rows and the volume with $volume_mib MiB" >&2
$docker exec bench-db psql -q -h /tmp -U app -d app -c "CREATE TABLE events AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b, now() AS at FROM generate_series(1, $rows * 1000000) g" >/dev/null
$docker run -d --name bench-app --init --network $net -v bench-backup-data:/data \
    -e DB_URL=postgres://app:bench-pw@db:5432/app "$registry/demo:1" >/dev/null
# Half random, half compressible text, in files of 64 MiB.
$docker exec bench-app sh -c "cd /data && for i in \$(seq 1 $((volume_mib / 64))); do
    if [ \$((i % 2)) = 0 ]; then dd if=/dev/urandom of=blob\$i bs=1M count=64 2>/dev/null;
    else yes 'a line of text that repeats in a log file' | head -c 67108864 > text\$i; fi; done"

# Milliseconds that a command takes.
timed() {
    local start end
    start=$(date +%s%3N)
    "$@" >/dev/null
    end=$(date +%s%3N)
    echo $((end - start))
}

plain_dump() { $docker exec bench-db pg_dump -h /tmp -U app -d app -Fc | dd of="$work/plain.pgdump" bs=1M conv=fsync status=none; }
plain_cp() { $docker cp bench-app:/data - | dd of="$work/plain.tar" bs=1M conv=fsync status=none; }
cutover_backup() { # extra flags...
    CUTOVER_STATE_DIR=$work/state /usr/bin/time -f '%M' -o "$work/rss" \
        "$cutover" backup bench-app --online --yes --json "$@" >"$work/report.json"
}
# The backup step's own time, as the report gives it (its keys are in alphabetical order).
backup_ms() { tr -d '\n' <"$work/report.json" | grep -o '"millis": [0-9]*,[^}]*"step": "backup"' | grep -o '^"millis": [0-9]*' | grep -o '[0-9]*$'; }

db_bytes=$($docker exec bench-db psql -h /tmp -U app -d app -Atc "SELECT pg_database_size('app')")
plain_db_ms=$(timed plain_dump)
cutover_backup --backup-db DB_URL
cut_db_ms=$(backup_ms)
db_rss=$(cat "$work/rss")
vol_bytes=$($docker exec bench-app du -sb /data | cut -f1)
plain_vol_ms=$(timed plain_cp)
cutover_backup --backup-volumes
cut_vol_ms=$(backup_ms)
vol_rss=$(cat "$work/rss")

mbps() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.0f", (b / 1048576) / (ms / 1000) }'; }
ratio() { awk -v p="$1" -v c="$2" 'BEGIN { printf "%.2f", p / c }'; }
printf '%-34s %10s %10s %8s\n' "backup of" "plain MB/s" "cutover" "ratio"
printf '%-34s %10s %10s %8s\n' "PostgreSQL ($((db_bytes >> 20)) MiB, pg_dump -Fc)" "$(mbps "$db_bytes" "$plain_db_ms")" "$(mbps "$db_bytes" "$cut_db_ms")" "$(ratio "$plain_db_ms" "$cut_db_ms")"
printf '%-34s %10s %10s %8s\n' "volume ($((vol_bytes >> 20)) MiB, docker cp)" "$(mbps "$vol_bytes" "$plain_vol_ms")" "$(mbps "$vol_bytes" "$cut_vol_ms")" "$(ratio "$plain_vol_ms" "$cut_vol_ms")"
echo "cutover peak RSS: database backup $((db_rss / 1024)) MiB, volume backup $((vol_rss / 1024)) MiB"
