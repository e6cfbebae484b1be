#!/usr/bin/env bash
# Builds cutover from this checkout and installs it: /usr/local/bin for root, else ~/.local/bin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v cargo >/dev/null; then
    echo "install.sh: cargo is not installed; install a Rust toolchain (1.89 or newer) first" >&2
    exit 1
fi
cargo build --release --locked --quiet
if [ "$(id -u)" -eq 0 ]; then dest=/usr/local/bin; else dest="$HOME/.local/bin"; fi
mkdir -p "$dest"
install -m 0755 target/release/cutover "$dest/cutover"
echo "installed $dest/cutover" >&2
