#!/usr/bin/env bash
# Select the profile's nvpmodel power mode by NAME and lock clocks with jetson_clocks.
# Mode IDs differ between boards (Orin Nano Super: 2=MAXN_SUPER; AGX Orin 32GB: 0=MAXN), so the
# ID is read from /etc/nvpmodel.conf instead of being hard-coded. Idempotent: a mode already set
# is left alone. Not run on a device by this project.
#
#   power.sh apply --mode MAXN [--clocks 1] [--dry-run] [--conf /etc/nvpmodel.conf]
#   power.sh show
set -euo pipefail

conf=/etc/nvpmodel.conf
mode=""
clocks=1
dry_run=0

die() { echo "power.sh: $*" >&2; exit 2; }
say() { echo "power.sh: $*"; }
run() {
    if [ "$dry_run" = 1 ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

# The ID of mode NAME in an nvpmodel.conf: lines like "< POWER_MODEL ID=2 NAME=MAXN_SUPER >".
mode_id() {
    local name=$1 file=$2
    sed -n 's/^< *POWER_MODEL *ID=\([0-9][0-9]*\) *NAME=\([A-Za-z0-9_]*\) *>.*$/\1 \2/p' "$file" |
        awk -v want="$name" '$2 == want { print $1; exit }'
}

current_mode() {
    nvpmodel -q 2>/dev/null | sed -n 's/^NV Power Mode: *//p' | head -n 1
}

command=${1:-}
[ -n "$command" ] || die "usage: power.sh apply --mode NAME [--clocks 0|1] [--dry-run] [--conf FILE] | show"
shift
while [ $# -gt 0 ]; do
    case $1 in
        --mode) mode=${2:?--mode needs a name}; shift 2 ;;
        --clocks) clocks=${2:?--clocks needs 0 or 1}; shift 2 ;;
        --conf) conf=${2:?--conf needs a file}; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        *) die "unknown argument: $1" ;;
    esac
done

case $command in
    show)
        command -v nvpmodel >/dev/null || die "nvpmodel not found: not a Jetson"
        say "mode: $(current_mode)"
        ;;
    apply)
        [ -n "$mode" ] || die "apply needs --mode NAME"
        [ -r "$conf" ] || die "$conf not readable: not a Jetson (use --conf FILE with --dry-run to test)"
        id=$(mode_id "$mode" "$conf")
        [ -n "$id" ] || die "no mode named $mode in $conf (modes: $(sed -n 's/^< *POWER_MODEL .*NAME=\([A-Za-z0-9_]*\).*/\1/p' "$conf" | tr '\n' ' '))"
        if [ "$dry_run" = 0 ]; then
            command -v nvpmodel >/dev/null || die "nvpmodel not found: not a Jetson"
            [ "$(id -u)" = 0 ] || die "needs root (sudo)"
        fi
        now=""
        if command -v nvpmodel >/dev/null; then now=$(current_mode); fi
        if [ "$now" = "$mode" ]; then
            say "mode $mode (ID $id) already set"
        else
            say "mode ${now:-unknown} -> $mode (ID $id)"
            # Some transitions ask for a reboot on stdin; answering "no" keeps this unattended and
            # the new mode applies after the next boot.
            run sh -c "echo no | nvpmodel -m $id"
        fi
        if [ "$clocks" = 1 ]; then
            run jetson_clocks
        fi
        ;;
    *) die "unknown command: $command" ;;
esac
