# Sourced by the benchmarks: the test world, Debian's docker client and a release build.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
eval "$(bash "$here/fixtures/world.sh" start)"
docker=/usr/bin/docker
registry=${CUTOVER_TEST_REGISTRY:-127.0.0.1:5000}
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
cutover="$here/target/release/cutover"
