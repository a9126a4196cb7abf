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
  # Go's fuzzing engine sometimes stops without a failing input on a loaded
  # machine ("context deadline exceeded" when a worker is busy at the
  # deadline, "fuzzing process hung or terminated unexpectedly" when a worker
  # is starved or killed): that is the engine, not the code, so such a run is
  # repeated once. A real finding names its failing input and fails at once;
  # it is written to testdata/fuzz, so a repeat would fail on it too.
  if ! out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
    echo "$out"
    if ! grep -qi 'failing input' <<<"$out"; then
      echo "fuzz: $pkg $name: the fuzzing engine stopped without a failing input; running it again"
      go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg"
    else
      exit 1
    fi
  else
    echo "$out" | tail -2
  fi
  found=$((found + 1))
done < <(git ls-files '*_test.go' | xargs -r grep -H -o '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/' | sort -u)
echo "fuzz: $found targets ran for $fuzztime each, none panicked"
