#!/usr/bin/env bash
# Run a command with the wall clock a year ahead (or FAKETIME, e.g. "+730d"), to check that
# the tests pass on any date: `tools/faketime/year-ahead.sh .venv/bin/pytest tests/test_x.py`.
# Needs Debian's faketime package and gcc. PostgreSQL and SeaweedFS run outside it, at the
# real time; Chromium does not start under libfaketime (leave out the browser tests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -e "$lib" ] || lib="$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)"
if [ ! -e "$lib" ]; then
  echo "year-ahead: libfaketime is missing (apt-get install faketime)" >&2
  exit 2
fi
build="${TMPDIR:-/tmp}/bulletin-faketime-shim"
mkdir -p "$build"
if [ ! -e "$build/shim.so" ] || [ "$here/shim.c" -nt "$build/shim.so" ]; then
  gcc -shared -fPIC -O2 -o "$build/shim.so" "$here/shim.c" -ldl
fi
export FAKETIME="${FAKETIME:-+365d}" FAKETIME_DONT_FAKE_MONOTONIC=1
export LD_PRELOAD="$build/shim.so $lib"
exec "$@"
