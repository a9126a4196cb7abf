#!/usr/bin/env bash
# Runs every Go fuzz target in the module for $FUZZTIME (default 3s) each, so decoders
# are fuzzed on every `make test`, not only when someone remembers to.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
found=0
while IFS=: read -r file name; do
  pkg=./$(dirname "$file")
  echo "fuzz: $pkg $name for $fuzztime"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg"
  found=$((found + 1))
done < <(git ls-files '*_test.go' | xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/' | sort -u)
echo "fuzz: $found targets ran for $fuzztime each, none panicked"
