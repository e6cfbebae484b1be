#!/usr/bin/env bash
# Builds cutover from this checkout and installs it: /usr/local/bin for root, else ~/.local/bin.
#
#   bash install.sh                              install the binary
#   bash install.sh --cron "0 3 * * *"           ... and run `cutover auto` on that schedule (crontab)
#   bash install.sh --systemd-timer "*-*-* 03:00:00"   ... or with a systemd timer (OnCalendar syntax)
#   --config FILE                                the config `cutover auto` reads (see README)
#
# It also installs the shell completions (bash, zsh, fish) and man pages the binary makes, under
# /usr/local/share for root, else ~/.local/share.
#
# CUTOVER_BINARY=PATH installs that binary instead of building one; CUTOVER_BIN_DIR,
# CUTOVER_SHARE_DIR and CUTOVER_SYSTEMD_DIR choose other destinations.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

cron= timer= config=
while [ $# -gt 0 ]; do
    case "$1" in
        --cron) cron=${2:?--cron needs a cron expression, e.g. "0 3 * * *"}; shift 2 ;;
        --systemd-timer) timer=${2:?--systemd-timer needs an OnCalendar expression, e.g. "*-*-* 03:00:00"}; shift 2 ;;
        --config) config=${2:?--config needs a file}; shift 2 ;;
        *) echo "install.sh: unknown option $1 (see the comment at the top of install.sh)" >&2; exit 2 ;;
    esac
done
if [ -n "$cron" ] && [ -n "$timer" ]; then
    echo "install.sh: choose --cron or --systemd-timer, not both" >&2; exit 2
fi
if [ -n "$cron" ] && [ "$(wc -w <<<"$cron")" -ne 5 ]; then
    echo "install.sh: --cron takes the 5 fields of a crontab line, e.g. \"0 3 * * *\"" >&2; exit 2
fi
if [ -n "$config" ]; then
    config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
    [ -f "$config" ] || { echo "install.sh: no config file $config" >&2; exit 2; }
fi

root=false
[ "$(id -u)" -eq 0 ] && root=true
if $root; then dest=${CUTOVER_BIN_DIR:-/usr/local/bin}; else dest=${CUTOVER_BIN_DIR:-$HOME/.local/bin}; fi
binary=${CUTOVER_BINARY:-}
if [ -z "$binary" ]; then
    if ! command -v cargo >/dev/null; then
        echo "install.sh: cargo is not installed; install a Rust toolchain (1.89 or newer) first" >&2
        exit 1
    fi
    cargo build --release --locked --quiet
    binary=target/release/cutover
fi
mkdir -p "$dest"
install -m 0755 "$binary" "$dest/cutover"
echo "installed $dest/cutover" >&2

if $root; then share=${CUTOVER_SHARE_DIR:-/usr/local/share}; else share=${CUTOVER_SHARE_DIR:-$HOME/.local/share}; fi
mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d"
"$dest/cutover" completions bash >"$share/bash-completion/completions/cutover"
"$dest/cutover" completions zsh >"$share/zsh/site-functions/_cutover"
"$dest/cutover" completions fish >"$share/fish/vendor_completions.d/cutover.fish"
"$dest/cutover" man --dir "$share/man/man1"
echo "installed completions and man pages under $share" >&2

command_line="$dest/cutover auto${config:+ --config $config}"
marker="# cutover auto (install.sh)"
if [ -n "$cron" ]; then
    # Replace an earlier line of ours, keep everything else the user has.
    { crontab -l 2>/dev/null | grep -vF "$marker" || true; echo "$cron $command_line >/dev/null 2>&1 $marker"; } | crontab -
    echo "scheduled with crontab: $cron $command_line" >&2
fi
if [ -n "$timer" ]; then
    if $root; then units=${CUTOVER_SYSTEMD_DIR:-/etc/systemd/system}; scope=(); else units=${CUTOVER_SYSTEMD_DIR:-$HOME/.config/systemd/user}; scope=(--user); fi
    mkdir -p "$units"
    cat >"$units/cutover-auto.service" <<UNIT
[Unit]
Description=cutover: upgrade opted-in containers along their policies

[Service]
Type=oneshot
ExecStart=$command_line
UNIT
    cat >"$units/cutover-auto.timer" <<UNIT
[Unit]
Description=Run cutover auto on a schedule

[Timer]
OnCalendar=$timer
Persistent=true

[Install]
WantedBy=timers.target
UNIT
    if command -v systemctl >/dev/null && [ -z "${CUTOVER_SYSTEMD_DIR:-}" ]; then
        systemctl "${scope[@]}" daemon-reload && systemctl "${scope[@]}" enable --now cutover-auto.timer
    fi
    echo "scheduled with a systemd timer in $units: OnCalendar=$timer" >&2
fi
