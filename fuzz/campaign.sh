#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 660) each, one after another, on one core.
# Usage: fuzz/campaign.sh [SECONDS]; logs to fuzz/logs/<target>.log. Needs nightly + cargo-fuzz.
set -u
cd "$(dirname "$0")"
secs=${1:-660}
python3 seed.py >/dev/null
cargo +nightly fuzz build -O --debug-assertions || exit 1
mkdir -p logs
for t in capture segment message sequencer normalize poll_loop nic_spec dag_file bus_file layout; do
    start=$(date +%s)
    cargo +nightly fuzz run -O --debug-assertions "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=65536 -timeout=10 -print_final_stats=1 >"logs/$t.log" 2>&1
    rc=$?
    echo "$t: exit $rc after $(( $(date +%s) - start )) s; $(grep -E '^Done' "logs/$t.log")"
done
