#!/bin/sh
# The runtime's command line end to end under mpirun: a run writes a timeline and a trace; calibrate,
# simulate --calibration and compare close the loop; a broken schedule and mismatched ranks are refused
# with a message on every rank, never a hang. Usage: run_cli_test.sh PIPESIM MPIEXEC DATA_DIR
set -u
bin=$1; mpiexec=$2; data=$3
. "$(dirname "$0")/../cli/lib.sh"
mpi() {
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    timeout 120 "$mpiexec" --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo \
    --mca oob_tcp_if_include lo "$@"
}
small="--layers 4 --hidden 16 --heads 2 --ffn 32 --seq 8"
mpi -n 2 "$bin" run --schedule zb-h1 --microbatches 8 --steps 4 $small --timeline "$work/run.json" \
  --trace "$work/run-trace.json" >"$work/run.out" 2>&1 || fail "run: $(tail -5 "$work/run.out")"
grep -q '"steps"' "$work/run.json" || fail "timeline lacks steps"
grep -q '"traceEvents"' "$work/run-trace.json" || fail "trace missing"
"$bin" calibrate "$work/run.json" -o "$work/cal.json" || fail "calibrate"
grep -q '"F_ns"' "$work/cal.json" || fail "calibration lacks stage durations"
"$bin" simulate --calibration "$work/cal.json" --timeline "$work/pred.json" >/dev/null || fail "simulate --calibration"
"$bin" compare "$work/run.json" "$work/pred.json" --format json >"$work/cmp.json" || fail "compare"
grep -q '"makespan_error"' "$work/cmp.json" || fail "compare lacks makespan_error"
# The prediction uses the run's own medians: it must land within a factor of 2 of the measured step.
err=$(sed -n 's/.*"makespan_error": \(-*[0-9.e+-]*\).*/\1/p' "$work/cmp.json")
awk -v e="$err" 'BEGIN { exit !(e > -0.5 && e < 1.0) }' || fail "makespan error $err out of range"
expect 0 "makespan: measured" compare "$work/run.json" "$work/pred.json"
expect 2 "not valid JSON" calibrate "$data/truncated_run.json"

# The issue's own command (tiny sizes), and a preset scaled down with its experts over two EP ranks.
mpi -n 4 "$bin" run --model tiny-moe --schedule dualpipe --microbatches 8 --steps 5 $small --timeline "$work/moe.json" \
  --trace "$work/moe-trace.json" >"$work/moe.out" 2>&1 || fail "tiny-moe dualpipe run: $(tail -5 "$work/moe.out")"
grep -q '"experts": 8' "$work/moe.json" || fail "the MoE run's timeline lacks its workload"
mpi -n 4 "$bin" run --model deepseek-v3 --ep 2 --experts 4 --schedule zb-h1 --microbatches 4 --steps 2 --check $small \
  --timeline "$work/ep.json" >"$work/ep.out" 2>&1 || fail "deepseek-v3 scaled run: $(tail -5 "$work/ep.out")"
grep -q "check: .*: OK" "$work/ep.out" || fail "scaled preset check failed: $(tail -3 "$work/ep.out")"
grep -q '"all_to_all_GBps": [1-9]' "$work/ep.json" || grep -q '"all_to_all_GBps": 0\.[0-9]*[1-9]' "$work/ep.json" \
  || fail "no all-to-all microbenchmark in the EP run"
"$bin" calibrate "$work/ep.json" | grep -q '"all_to_all_GBps"' || fail "calibration lacks the all-to-all figure"

# Refusals: before anything runs, on every rank, with the reason.
mpi -n 2 "$bin" run --from-csv "$data/deadlock.csv" $small >"$work/dl.out" 2>&1
[ $? -ne 0 ] || fail "a deadlocking schedule ran"
grep -q "deadlock" "$work/dl.out" || fail "deadlock not explained: $(head -5 "$work/dl.out")"
mpi -n 1 "$bin" run --schedule 1f1b -m 4 $small : -n 1 "$bin" run --schedule 1f1b -m 6 $small >"$work/mm.out" 2>&1
[ $? -ne 0 ] || fail "mismatched ranks ran"
grep -q "different arguments" "$work/mm.out" || fail "mismatch not explained: $(head -5 "$work/mm.out")"
mpi -n 2 "$bin" run --schedule 1f1b -m 4 --layers 1 --hidden 16 --heads 2 --ffn 32 --seq 8 >"$work/sp.out" 2>&1
[ $? -ne 0 ] || fail "a model that does not split ran"
grep -q "do not split" "$work/sp.out" || fail "split error not explained: $(head -5 "$work/sp.out")"

mpi -n 3 "$bin" run --model tiny-moe --ep 2 --schedule 1f1b -m 4 $small >"$work/ep3.out" 2>&1
[ $? -ne 0 ] || fail "3 ranks with --ep 2 ran"
grep -q "does not divide the 3 MPI ranks" "$work/ep3.out" || fail "ep mismatch not explained: $(head -3 "$work/ep3.out")"

[ "$failures" -eq 0 ] && echo "run CLI: all checks passed"
exit "$failures"
