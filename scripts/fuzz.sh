#!/usr/bin/env bash
# Runs each fuzz target for a while (default 600 s each; FUZZ_SECONDS to change), keeping the
# corpus in fuzz/corpus. Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Not part of CI (its time budget), but run before a release and after touching the parsers.
#   scripts/fuzz.sh                 all targets, 10 minutes each
#   scripts/fuzz.sh parse_values    one target
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-600}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(csv_ingest parse_values config workbook_ingest utf16_ingest)
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${seconds}s"
  # -s none: the inputs are parsed by safe Rust (the crate denies unsafe code outside the arrow
  # bridge), so AddressSanitizer adds time without adding findings; panics and aborts are caught.
  cargo +nightly fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len=65536 -timeout=20
done
