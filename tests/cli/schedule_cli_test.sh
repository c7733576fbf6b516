#!/bin/sh
# `pipesim schedule` end to end: outputs, round trips, and for bad input exit code 2, a message naming
# the problem, and no output file. Usage: schedule_cli_test.sh PIPESIM DATA_DIR
set -u
bin=$1
data=$2
. "$(dirname "$0")/lib.sh"

expect 0 "dualpipev" schedule --list
expect 0 "Step 11: 0B5" schedule --schedule 1f1b --pp 4 --microbatches 6
expect 0 "zb-h2" schedule --compare --pp 4 --microbatches 8
expect 0 "Examples:" schedule --help
expect 0 '"stage_to_rank": \[0,1,2,3,3,2,1,0\]' schedule --schedule zb-v --pp 4 --microbatches 8 --format json
expect 0 "0F0 0SEND_F0" schedule --schedule 1f1b --pp 2 --microbatches 2 --format text --with-comms

# Round trips through files: CSV out, CSV in, identical; JSON written atomically.
"$bin" schedule -s dualpipe --pp 4 -m 8 --format csv -o "$work/dp.csv" || fail "csv export"
"$bin" schedule --from-csv "$work/dp.csv" --format csv -o "$work/dp2.csv" || fail "csv import"
cmp -s "$work/dp.csv" "$work/dp2.csv" || fail "csv round trip differs"
"$bin" schedule -s dualpipe --pp 4 -m 8 --with-comms --format csv -o "$work/dpc.csv" || fail "lowered export"
expect 0 "SEND_F" schedule --from-csv "$work/dpc.csv" --format text
"$bin" schedule -s zb-h1 --pp 4 -m 8 --format json -o "$work/a.json" && "$bin" schedule -s zb-h1 --pp 4 -m 8 --format json -o "$work/b.json"
cmp -s "$work/a.json" "$work/b.json" || fail "json output is not byte-stable"
ls "$work" | grep -q tmp && fail "temporary file left behind"

# Bad input: exit 2, a message naming the field or constraint, no output file.
expect 2 "unknown schedule 'zb-h9'" schedule --schedule zb-h9 --pp 4 --microbatches 8
expect 2 "even number of ranks" schedule --schedule dualpipe --pp 3 --microbatches 12
expect 2 "at least 2 x ranks" schedule --schedule dualpipe --pp 4 --microbatches 6
expect 2 "at least 2 x ranks" schedule --schedule dualpipev --pp 4 --microbatches 7
expect 2 "multiple of the ranks" schedule --schedule interleaved-1f1b --pp 4 --microbatches 6
expect 2 "at least 1 micro-batch" schedule --schedule 1f1b --pp 4 --microbatches 0
expect 2 "at least 1 rank" schedule --schedule gpipe --pp 0 --microbatches 4
expect 2 "interleaved-1f1b only" schedule --schedule 1f1b --virtual-stages 2
expect 2 "use 1 to 64" schedule --schedule interleaved-1f1b --pp 2 --microbatches 4 --virtual-stages 0
expect 2 "pp" schedule --schedule 1f1b --pp four
expect 2 "format" schedule --schedule 1f1b --format yaml
expect 2 "say what to print" schedule
expect 2 "subcommand" 
expect 2 "either --schedule or --from-csv" schedule --schedule 1f1b --from-csv "$data/deadlock.csv"
expect 2 "deadlock" schedule --from-csv "$data/deadlock.csv" -o "$work/never.txt"
expect 2 "blocked here" schedule --from-csv "$data/deadlock.csv"
expect 2 "line 2 (rank 1), cell 2: invalid action '1X0'" schedule --from-csv "$data/malformed.csv" -o "$work/never.txt"
expect 2 "does not exist" schedule --from-csv "$work/missing.csv"
expect 2 "cannot write" schedule --schedule 1f1b -o "$work/no/such/dir/out.txt"
[ -e "$work/never.txt" ] && fail "an output file was written for bad input"

[ "$failures" -eq 0 ] && echo "schedule CLI: all checks passed"
exit "$failures"
