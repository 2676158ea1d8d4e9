#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ (ignored by git) from the hand-written seeds in fuzz/seeds/.
set -euo pipefail
cd "$(dirname "$0")"
for t in statement_v1 statement_v2; do
  mkdir -p "corpus/$t" && cp seeds/statement/* "corpus/$t/"
done
mkdir -p corpus/query && cp seeds/query/* corpus/query/
