#!/usr/bin/env bash
# Installs what the peer benchmarks need from Debian's packages (only what is missing), then
# says which peers can be built. Nothing here is fatal: a package that cannot be installed is
# reported, and run.sh / http.sh skip the peers it would have built, with a note.
#
#   peers/install.sh            as root (CI, a fresh machine of this kind)
set -uo pipefail

PACKAGES=(build-essential libboost-context-dev libpth-dev golang-go valgrind wrk curl time iproute2 util-linux)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "[install.sh] installing: ${missing[*]}" >&2
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        (apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null) ||
            echo "[install.sh] could not install some of: ${missing[*]}" >&2
    else
        echo "[install.sh] not root: install them yourself (apt-get install ${missing[*]})" >&2
    fi
fi

note() { echo "[install.sh] $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
have gcc || note "skipped: the C peers (no gcc)"
[ -f /usr/include/boost/context/fiber.hpp ] || note "skipped: Boost.Context (no libboost-context-dev)"
[ -f /usr/include/pth.h ] || note "skipped: GNU Pth (no libpth-dev)"
have go || note "skipped: the Go peers (no golang-go)"
have swift || note "skipped: the SwiftNIO and Hummingbird servers (no swift on PATH)"
have wrk || note "skipped: every HTTP row (no wrk)"
have valgrind || note "skipped: instruction counts (no valgrind)"
exit 0
