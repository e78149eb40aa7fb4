#!/bin/sh
# check-exports.sh LIB HEADER — the shared library LIB exports exactly the
# functions HEADER declares with BN_API: nothing internal leaks out (the
# objects are built with -fvisibility=hidden) and nothing public is missing.
# A declaration names its function on the line that holds BN_API.
set -eu
lib=${1:?usage: check-exports.sh LIB HEADER}
hdr=${2:?usage: check-exports.sh LIB HEADER}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the identifier right before the first '(' of each BN_API line
grep -E '^[[:space:]]*BN_API[[:space:]]' "$hdr" |
    sed -E 's/^[^(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\(.*/\1/' | sort -u >"$tmp/declared"
nm -D --defined-only "$lib" | awk 'NF == 3 && $2 ~ /^[TDBRVWi]$/ { print $3 }' | sort -u >"$tmp/exported"
status=0
if ! [ -s "$tmp/declared" ]; then
    echo "check-exports: $hdr declares nothing with BN_API"
    exit 1
fi
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
if [ -s "$tmp/extra" ]; then
    echo "check-exports: $lib exports symbols $hdr does not declare BN_API:"
    sed 's/^/  /' "$tmp/extra"
    status=1
fi
if [ -s "$tmp/missing" ]; then
    echo "check-exports: $hdr declares BN_API functions $lib does not export:"
    sed 's/^/  /' "$tmp/missing"
    status=1
fi
[ $status -eq 0 ] && echo "check-exports: $lib exports the $(wc -l <"$tmp/declared") functions of $hdr, nothing else"
exit $status
