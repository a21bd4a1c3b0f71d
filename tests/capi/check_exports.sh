#!/bin/sh
# Fails if the shared library exports any dynamic symbol that is not ks_*.
set -eu
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^ks_' | grep -v '^$' || true)
if [ -n "$bad" ]; then
  echo "non-ks_ symbols exported by $lib:"
  echo "$bad"
  exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^ks_')
echo "exports: $count ks_ symbols, nothing else"
