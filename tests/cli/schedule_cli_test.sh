#!/bin/sh
# `pipesim schedule` end to end: outputs, round trips, and for bad input exit code 2, a message naming
# the problem, and no output file. Usage: schedule_cli_test.sh PIPESIM DATA_DIR
set -u
bin=$1
data=$2
. "$(dirname "$0")/lib.sh"


expect 0 "dualpipev" schedule --list
expect 0 "Step 11: 0B5" schedule --schedule 1f1b --pp 4 --microbatches 6
# The programs, rebuilt here from the schedules' definitions. 1F1B (Megatron order): rank r runs
# w = min(p-1-r, m) warm-up forwards, then one forward and one backward, then the remaining backwards.
run_json 1f1b schedule --schedule 1f1b --pp 4 --microbatches 6 --format json
check 1f1b '
p, m = 4, 6
eq([j["ranks"], j["stages"], j["microbatches"], j["stage_to_rank"]], [p, p, m, list(range(p))], "sizes")
for r in range(p):
    w = min(p - 1 - r, m)
    want = ["%dF%d" % (r, k) for k in range(w)]
    for k in range(m - w): want += ["%dF%d" % (r, w + k), "%dB%d" % (r, k)]
    want += ["%dB%d" % (r, k) for k in range(m - w, m)]
    eq(j["programs"][r], want, "rank %d" % r)
'
# GPipe: every forward, then every backward, in micro-batch order.
run_json gpipe schedule --schedule gpipe --pp 3 --microbatches 5 --format json
check gpipe '
for r in range(3):
    eq(j["programs"][r], ["%dF%d" % (r, k) for k in range(5)] + ["%dB%d" % (r, k) for k in range(5)], "rank %d" % r)
'
# ZB-H1 and ZB-V: every stage runs F, I and W of every micro-batch exactly once, I before W.
for s in zb-h1 zb-v; do
  run_json "$s" schedule --schedule "$s" --pp 4 --microbatches 8 --format json
  check "$s" '
  for r, program in enumerate(j["programs"]):
      stages = [s for s, rank in enumerate(j["stage_to_rank"]) if rank == r]
      want = sorted("%d%s%d" % (s, op, k) for s in stages for op in "FIW" for k in range(8))
      eq(sorted(program), want, "rank %d runs each pass once" % r)
      for s in stages:
          for k in range(8):
              ok(program.index("%dI%d" % (s, k)) < program.index("%dW%d" % (s, k)), "rank %d: %dW%d before its I" % (r, s, k))
  '
done
# --compare: actions 2pm (3pm split), and peak in-flight forwards by rank from each schedule's closed
# form: GPipe m; 1F1B min(p-r, m); ZB-H1 p and ZB-H2 2p-1 (W-pending forwards count) on every rank.
"$bin" schedule --compare --pp 4 --microbatches 8 >"$work/compare.txt" 2>&1 || fail "schedule --compare"
grep -q "^gpipe  *4  *1x  *64  *0  *0  8 8 8 8$" "$work/compare.txt" || fail "gpipe comparison row: $(cat "$work/compare.txt")"
grep -q "^1f1b  *4  *1x  *64  *0  *0  4 3 2 1$" "$work/compare.txt" || fail "1f1b comparison row"
grep -q "^zb-h1  *4  *1x  *96  *0  *32  4 4 4 4$" "$work/compare.txt" || fail "zb-h1 comparison row"
grep -q "^zb-h2  *4  *1x  *96  *0  *32  7 7 7 7$" "$work/compare.txt" || fail "zb-h2 comparison row"
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
expect 2 "--pp: dualpipe: ranks 3 must be even" schedule --schedule dualpipe --pp 3 --microbatches 12
expect 2 "--microbatches: dualpipe: microbatches 6 must be even and >= 2 x ranks = 8" schedule --schedule dualpipe --pp 4 --microbatches 6
expect 2 "microbatches 7 must be >= 2 x ranks = 8" schedule --schedule dualpipev --pp 4 --microbatches 7
expect 2 "microbatches 6 must be a multiple of ranks 4" schedule --schedule interleaved-1f1b --pp 4 --microbatches 6
expect 2 "--microbatches: 1f1b: microbatches 0 must be >= 1" schedule --schedule 1f1b --pp 4 --microbatches 0
expect 2 "--pp: gpipe: ranks 0 must be >= 1" schedule --schedule gpipe --pp 0 --microbatches 4
expect 2 "interleaved-1f1b only" schedule --schedule 1f1b --virtual-stages 2
expect 2 "virtual_stages 0 must be 1 to 64" schedule --schedule interleaved-1f1b --pp 2 --microbatches 4 --virtual-stages 0
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
