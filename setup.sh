#!/usr/bin/env bash
# Set up dockit on a fresh Debian/Ubuntu machine, then trace an example program.
#   ./setup.sh            install the tracers and dockit (with its test extras), run the example
#   ./setup.sh --no-example
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v ltrace >/dev/null 2>&1 || need+=(ltrace)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${need[*]}"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

if [ "${1:-}" != "--no-example" ]; then
    out=$(mktemp -d)
    echo "setup: tracing an example: sh -c 'ls / | wc -l'"
    dockit -l "$out/example" sh -c 'ls / | wc -l'
    echo "setup: the summary is $(ls "$out"/example.strace.*.xml)"
fi
