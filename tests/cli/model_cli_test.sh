#!/bin/sh
# Models on clusters end to end: `simulate --model`, `sweep` (threads, and under mpirun split over ranks
# with the same result), `study`; bad plans exit 2 naming the field. Usage: model_cli_test.sh PIPESIM MPIEXEC
set -u
bin=$1
mpiexec=${2:-}
. "$(dirname "$0")/lib.sh"

ds="--model deepseek-v3 --cluster deepseek-h800 --pp 16 --ep 64 --precision fp8 --selective-recompute"
expect 0 "MFU" simulate $ds --schedule dualpipe --microbatches 40
expect 0 "EP compute:communication" simulate $ds --schedule dualpipe --microbatches 40
expect 0 "one representative GPU per pipeline stage" simulate $ds --schedule zb-v --microbatches 40
expect 0 "simulated all 128 data-parallel replicas" simulate $ds --schedule 1f1b --microbatches 32 --full
expect 0 "DOES NOT FIT" simulate --model llama3-405b --cluster hgx-h200 --pp 2 --schedule 1f1b -m 8
expect 0 '"tokens_per_s"' simulate $ds --schedule dualpipe --microbatches 40 --format json
expect 0 "dualpipev" simulate $ds --schedule 1f1b,dualpipev --microbatches 40
"$bin" simulate $ds --schedule dualpipe --microbatches 40 --trace "$work/ds.json" >/dev/null || fail "trace"
grep -q '"EP all-to-all"' "$work/ds.json" || fail "trace lacks the EP stream"
grep -q '"reduce-scatter gradients"' "$work/ds.json" || fail "trace lacks the DP stream"

# Sweep: table, CSV, JSON; invalid points kept with their reason; the Pareto front marked.
expect 0 "pareto" sweep $ds --vary schedule=1f1b,dualpipe --vary microbatches=32,48
"$bin" sweep $ds --vary schedule=1f1b,dualpipe,zb-h2 --vary pp=8,16,7 --vary microbatches=32 --format csv -o "$work/s.csv" 2>/dev/null \
  || fail "sweep csv"
head -1 "$work/s.csv" | grep -q "^schedule,pp,microbatches,step_s" || fail "csv header: $(head -1 "$work/s.csv")"
[ "$(wc -l < "$work/s.csv")" -eq 10 ] || fail "csv should have 9 points + header"
grep -q "pp 7 x tp 1 does not divide" "$work/s.csv" || fail "invalid point lacks its reason"
grep -q ",yes," "$work/s.csv" || fail "no point marked on the Pareto front"
if [ -n "$mpiexec" ]; then
  "$bin" sweep $ds --vary schedule=1f1b,zb-v,dualpipe --vary microbatches=32,64 --format json -o "$work/one.json" 2>/dev/null
  # OpenMPI's own start-up allocations are never freed; leak checking stays on for everything else.
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$mpiexec" -n 2 --oversubscribe \
    --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
    "$bin" sweep $ds --vary schedule=1f1b,zb-v,dualpipe --vary microbatches=32,64 --format json -o "$work/two.json" 2>"$work/mpi.err" \
    || fail "sweep under mpirun: $(tail -5 "$work/mpi.err")"
  cmp -s "$work/one.json" "$work/two.json" || fail "sweep under mpirun differs from a single process"
fi
expect 2 "unknown field 'colour'" sweep $ds --vary colour=red
expect 2 "should be FIELD=V1,V2" sweep $ds --vary pp
expect 2 "'abc' is not a non-negative integer" sweep $ds --vary microbatches=8,abc
expect 2 "give --model" sweep --vary pp=8

# The built-in study, and bad plans.
"$bin" study --microbatches 32 --traces "$work/study" >"$work/study.txt" 2>/dev/null || fail "study"
grep -q "Fastest" "$work/study.txt" || fail "study lacks its conclusion"
[ -s "$work/study/dualpipe.json" ] || fail "study trace missing"
expect 2 "ep 48 must divide dp 128" simulate --model deepseek-v3 --cluster deepseek-h800 --pp 16 --ep 48 --schedule 1f1b -m 32
expect 2 "unknown model 'gpt-9'" simulate --model gpt-9 --schedule 1f1b
expect 2 "unknown cluster" simulate --model deepseek-v3 --cluster moon-base --schedule 1f1b
expect 2 "layers-per-stage sums to 12" simulate $ds --schedule 1f1b -m 32 --layers-per-stage 1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0
expect 2 "straggler" simulate $ds --schedule 1f1b -m 32 --full --straggler 99999=2

[ "$failures" -eq 0 ] && echo "model CLI: all checks passed"
exit "$failures"
