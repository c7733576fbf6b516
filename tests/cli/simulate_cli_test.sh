#!/bin/sh
# `pipesim simulate` end to end: reports, JSON fields, traces, cost files; bad input exits 2 with a message
# naming the flag or JSON path, and writes nothing. Usage: simulate_cli_test.sh PIPESIM DATA_DIR
set -u
bin=$1
data=$2
. "$(dirname "$0")/lib.sh"

# 1F1B, p=4, m=8, F=1ms B=1.5ms: makespan (m+p-1)(F+B) = 27.5 ms, idle (p-1)(F+B) = 7.5 ms on every rank.
expect 0 "makespan 27.500 ms" simulate --schedule 1f1b --pp 4 --microbatches 8 --cost F=1ms,I=1ms,W=0.5ms
expect 0 "7.500 ms" simulate --schedule 1f1b --pp 4 --microbatches 8 --cost F=1ms,I=1ms,W=0.5ms
expect 0 '"makespan_us": 27500' simulate -s 1f1b --pp 4 -m 8 --cost F=1ms,I=1ms,W=0.5ms --format json
expect 0 '"bubble_rate"' simulate -s 1f1b --pp 4 -m 8 --format json
expect 0 '"peak_activation_bytes"' simulate -s zb-h1 --pp 4 -m 8 --format json
expect 0 "zb-h2" simulate -s 1f1b,zb-h1,zb-h2,zb-v,dualpipe --pp 4 -m 8 --cost-per-rank
expect 0 "cost-per-rank to compare" simulate -s 1f1b,zb-v --pp 4 -m 8
expect 0 "Examples:" simulate --help
# The cost file: stage 0 and 3 are slower and rank 2 runs at half speed, so rank 2 is busy longest.
"$bin" simulate -s 1f1b --pp 4 -m 8 --cost-file "$data/costs.json" --format json -o "$work/report.json" || fail "cost file run"
grep -q '"rank": 2, "busy_us": 40000' "$work/report.json" 2>/dev/null || tr -d ' \n' <"$work/report.json" | grep -q '"rank":2,"busy_us":40000' \
  || fail "straggler rank 2 should be busy 8 x (2ms + 3ms) = 40 ms: $(cat "$work/report.json")"
# Traces: written atomically, one per schedule when several.
"$bin" simulate -s dualpipe --pp 8 -m 20 --cost F=1ms,I=1ms,W=0.5ms,FB=2.2ms --trace "$work/dp.json" >/dev/null || fail "trace run"
grep -q '"OVERLAP_F_B"' "$work/dp.json" || fail "DualPipe trace lacks overlapped pairs"
"$bin" simulate -s 1f1b,zb-h1 --pp 2 -m 4 --trace "$work/t.json" >/dev/null || fail "two traces"
[ -s "$work/t-1f1b.json" ] && [ -s "$work/t-zb-h1.json" ] || fail "per-schedule traces missing"

# Bad input.
expect 2 "needs a unit" simulate -s 1f1b --cost F=1.2,I=1ms,W=1ms
expect 2 "unknown pass 'X'" simulate -s 1f1b --cost X=1ms
expect 2 "should be NAME=DURATION" simulate -s 1f1b --cost F1ms
expect 2 "unknown unit 'parsec'" simulate -s 1f1b --p2p-latency 3parsec
expect 2 "--p2p-bandwidth: '50' needs a unit" simulate -s 1f1b --p2p-bandwidth 50
expect 2 "--activation-bytes" simulate -s 1f1b --activation-bytes 64
expect 2 "every pass must take some time" simulate -s 1f1b --cost F=0ms,I=1ms,W=1ms
expect 2 "default.F: expected a string with a unit" simulate -s 1f1b --cost-file "$data/costs_bare_number.json"
expect 2 "ranks: '9' is not an index in 0..3" simulate -s 1f1b --pp 4 --cost-file "$data/costs_bad_rank.json"
expect 2 "not valid JSON" simulate -s 1f1b --cost-file "$data/costs_truncated.json"
expect 2 "defaults: unknown field" simulate -s 1f1b --cost-file "$data/costs_unknown_field.json"
expect 2 "deadlock" simulate --from-csv "$data/deadlock.csv" --trace "$work/never.json"
expect 2 "say what to simulate" simulate
expect 2 "even number of ranks" simulate -s dualpipe --pp 3 -m 12 --trace "$work/never.json"
[ -e "$work/never.json" ] && fail "a trace was written for bad input"
ls "$work" | grep -q '\.tmp\.' && fail "temporary file left behind"

[ "$failures" -eq 0 ] && echo "simulate CLI: all checks passed"
exit "$failures"
