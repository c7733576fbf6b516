#!/bin/sh
# The runtime's command line end to end under mpirun: a run writes a timeline and a trace; calibrate,
# simulate --calibration and compare close the loop, and the prediction must explain the measured step
# (see the band below); a broken schedule, mismatched ranks and a --pp that is not MPI ranks / --ep are
# refused with a message on every rank, never a hang. Usage: run_cli_test.sh PIPESIM MPIEXEC DATA_DIR
set -u
bin=$1; mpiexec=$2; data=$3
. "$(dirname "$0")/../cli/lib.sh"
mpi() {
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}" LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")/.." && pwd)/lsan-openmpi.supp" \
    timeout 120 "$mpiexec" --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo \
    --mca oob_tcp_if_include lo "$@"
}
small="--layers 4 --hidden 16 --heads 2 --ffn 32 --seq 8"
mpi -n 2 "$bin" run --schedule zb-h1 --pp 2 --microbatches 8 --steps 4 $small --timeline "$work/run.json" \
  --trace "$work/run-trace.json" >"$work/run.out" 2>&1 || fail "run: $(tail -5 "$work/run.out")"
grep -q '"steps"' "$work/run.json" || fail "timeline lacks steps"
grep -q '"traceEvents"' "$work/run-trace.json" || fail "trace missing"
"$bin" calibrate "$work/run.json" -o "$work/cal.json" || fail "calibrate"
grep -q '"F_ns"' "$work/cal.json" || fail "calibration lacks stage durations"
"$bin" simulate --calibration "$work/cal.json" --timeline "$work/pred.json" >/dev/null || fail "simulate --calibration"
"$bin" compare "$work/run.json" "$work/pred.json" --format json >"$work/cmp.json" || fail "compare"
grep -q '"makespan_error"' "$work/cmp.json" || fail "compare lacks makespan_error"
# The run's operator-tagged kernels (CPU operators, gathered from both processes) fit a hardware profile
# that simulate loads, and price every action for a prediction made from kernel rates alone.
grep -q '"gemm","F"' "$work/run.json" || fail "the run's kernels lack their operators"
"$bin" calibrate "$work/run.json" --hw-profile-out "$work/profile.json" -o /dev/null 2>"$work/fit.txt" \
  || fail "calibrate --hw-profile-out: $(tail -3 "$work/fit.txt")"
grep -q "gemm fp64.wgrad *stage 1 (W)" "$work/fit.txt" || fail "no residual row for stage 1's W GEMMs: $(cat "$work/fit.txt")"
grep -q '"fp64.dgrad"' "$work/profile.json" || fail "profile lacks the fp64 dgrad table"
grep -q '"gpu": *"cpu"' "$work/profile.json" || fail "the profile does not name the device its kernels ran on"
"$bin" simulate --model megatron-1.7b --cluster dgx-h100 --pp 2 --hw-profile "$work/profile.json" >/dev/null \
  || fail "simulate does not load the fitted profile"
"$bin" calibrate "$work/run.json" --from-kernels -o "$work/priced.json" 2>"$work/priced.txt" || fail "calibrate --from-kernels"
grep -q "in kernels" "$work/priced.txt" || fail "no measured-against-priced table"
"$bin" simulate --calibration "$work/priced.json" --timeline "$work/kpred.json" >/dev/null || fail "simulate priced"
"$bin" compare "$work/run.json" "$work/kpred.json" >/dev/null || fail "compare priced"
python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
for step in r['kernels']:
    for k in step: del k[6:]
json.dump(r, open(sys.argv[2], 'w'))" "$work/run.json" "$work/untagged.json"
expect 2 "no kernel names the operator" calibrate "$work/untagged.json" --from-kernels
cp "$work/run.json" "$work/other.json"  # (another size in real use)
"$bin" calibrate "$work/run.json" --with "$work/other.json" --hw-profile-out "$work/profile2.json" -o /dev/null \
  2>"$work/fit2.txt" || fail "calibrate --with: $(tail -2 "$work/fit2.txt")"
grep -q "run 2 stage 0 (F)" "$work/fit2.txt" || fail "--with's phases are not named by run: $(head -5 "$work/fit2.txt")"
expect 2 "adds runs to the hardware-profile fit" calibrate "$work/run.json" --with "$work/other.json"
expect 2 "is given twice" calibrate "$work/run.json" --with "$work/run.json" --hw-profile-out "$work/p3.json"
expect 2 "a predicted timeline" calibrate "$work/run.json" --with "$work/pred.json" --hw-profile-out "$work/p3.json"
expect 2 "needs --device cuda and --precision fp32" run --threads 2 --schedule 1f1b -m 2 $small --gemm-math bf16
expect 2 "needs MoE layers over --ep 2 or more (this run: 0 experts, --ep 1)" run --threads 2 --schedule dualpipe -m 4 \
  $small --overlap-pairs
expect 2 "schedule 1f1b has no overlapped F&B pairs" run --threads 4 --schedule 1f1b -m 4 $small --model tiny-moe \
  --ep 2 --overlap-pairs
# How far may the prediction P (simulate --calibration: the engine replaying the run's lowered programs
# with each (stage, pass) at its median over the steps after the first) be from the measured step M that
# compare picks (the median-makespan step)? The engine's makespan is a longest path through the
# schedule's dependency graph: each action adds its duration, each hand-off its link delay. The executor
# runs the same graph (the runtime tests check that passes wait for exactly their producers), so M is the
# same longest path with other weights: the durations this step really took, the executor's own time
# between actions, the real delay of each hand-off. A longest path moves by at most the sum of the changes
# of the weights on it (max-plus is 1-Lipschitz), and summing over every action bounds the sum over any
# path, so
#   |M - P| <= D + G + X
#   D = sum over the step's F/I/W of |measured - median|  (how noisy this step was: 0 on a quiet machine)
#   G = sum over ranks of the idle time between consecutive spans, and before the first (bookkeeping, the
#       isend calls, test/progress polling: the engine charges none of it), plus any time either step runs
#       past its last compute span (a transfer's tail)
#   X = sum over hand-offs of max(x, l): x the receiver's wait once both it and the sender were there (link
#       delay plus the wait's own cost), l the modelled latency + bytes / bandwidth
# Every term is measured in this very run, so the band is as tight as the machine was quiet: a few
# percent of the step when idle, wider only by the noise the step itself shows. The medians are computed
# here from the spans and must equal calibrate's, so a calibration that misreads the run cannot widen D.
# (Written for a schedule without overlapped F&B pairs, whose engine cost is not simply their median.)
python3 - "$work/run.json" "$work/pred.json" "$work/cal.json" "$work/cmp.json" >"$work/band.out" 2>&1 <<'PY' \
  || fail "makespan: $(tail -c 600 "$work/band.out")"
import json, re, sys
run, pred, cal, cmp = (json.load(open(f)) for f in sys.argv[1:5])
def makespan(step): return max(s[4] for s in step)   # span: [rank, stream, action, start, end, bytes, peer, flow]
used = run["steps"][1:] if len(run["steps"]) > 1 else run["steps"]
step = sorted(used, key=makespan)[len(used) // 2]
M, P = makespan(step), makespan(pred["steps"][0])
if abs(M / 1e3 - cmp["measured_makespan_us"]) > 1e-3 or abs(P / 1e3 - cmp["predicted_makespan_us"]) > 1e-3:
    sys.exit(f"compare reports {cmp['measured_makespan_us']} / {cmp['predicted_makespan_us']} us, the files say {M} / {P} ns")
def pass_of(action):
    m = re.fullmatch(r"(\d+)([FIWB])(\d+)", action)
    return (int(m.group(1)), m.group(2)) if m else None
durations = {}
for s in (s for st in used for s in st if s[1] == "compute" and pass_of(s[2])):
    durations.setdefault(pass_of(s[2]), []).append(s[4] - s[3])
median = {k: sorted(v)[len(v) // 2] for k, v in durations.items()}
for stage, d in enumerate(cal["durations"]):
    for op in "FIWB":
        if d[op + "_ns"] != median.get((stage, op)):
            sys.exit(f"calibration says stage {stage} {op} = {d[op + '_ns']} ns; the run's median is {median.get((stage, op))}")
# A bandwidth the microbenchmark could not resolve (0 on a loaded machine) leaves the link at its latency,
# as the engine prices it.
bw = cal["p2p"]["bandwidth_GBps"]
link = cal["p2p"]["latency_ns"] + (cal["activation_bytes"] / bw if bw > 0 else 0)
sent = {s[7]: s[3] for s in step if s[1] == "p2p"}
def compute_end(st): return max(s[4] for s in st if s[1] == "compute")
D, G, X = 0, (M - compute_end(step)) + (P - compute_end(pred["steps"][0])), 0
for rank in range(run["ranks"]):
    t = 0
    for s in sorted((s for s in step if s[0] == rank and s[1] == "compute"), key=lambda s: s[3]):
        G += max(0, s[3] - t)
        t = max(t, s[4])
        if pass_of(s[2]):
            D += abs(s[4] - s[3] - median[pass_of(s[2])])
        elif "RECV" in s[2]:  # waited from its post until the data was here
            X += max(s[4] - max(s[3], sent[s[7]]), link)
        else:
            sys.exit(f"{s[2]}: this check knows plain passes and RECVs only")
band = D + G + X
print(f"measured {M} ns, predicted {P} ns: |M - P| = {abs(M - P)} ns <= D {D} + G {G} + X {X:.0f} = {band:.0f} ns "
      f"({band / M:.1%} of the step)")
if abs(M - P) > band:
    sys.exit(f"the prediction is further from the measured step than the run's own noise explains: "
             f"|{M} - {P}| > D {D} + G {G} + X {X:.0f}")
PY
expect 0 "makespan: measured" compare "$work/run.json" "$work/pred.json"
expect 2 "not valid JSON" calibrate "$data/truncated_run.json"
expect 2 "llama3-70b has a dense MLP" run --model llama3-70b --experts 4 --schedule 1f1b

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

mpi -n 4 "$bin" run --schedule 1f1b -m 4 --pp 4 --ep 2 --model tiny-moe $small >"$work/pp.out" 2>&1
[ $? -eq 2 ] || fail "--pp 4 with 4 MPI ranks and --ep 2 did not exit 2: $(head -3 "$work/pp.out")"
grep -q -- "--pp 4 does not match the 4 MPI ranks / --ep 2 = 2 pipeline ranks" "$work/pp.out" \
  || fail "--pp mismatch not explained: $(head -3 "$work/pp.out")"

mpi -n 3 "$bin" run --model tiny-moe --ep 2 --schedule 1f1b -m 4 $small >"$work/ep3.out" 2>&1
[ $? -ne 0 ] || fail "3 ranks with --ep 2 ran"
grep -q "does not divide the 3 MPI ranks" "$work/ep3.out" || fail "ep mismatch not explained: $(head -3 "$work/ep3.out")"

# --threads: the same run with ranks as threads of one process, no mpirun; the check still holds, and a
# refusal is printed once.
expect 0 "4 of 4 micro-batch losses bit-identical" run --threads 2 --schedule zb-v -m 4 $small --check
expect 0 "OK" run --threads 4 --model tiny-moe --ep 2 --schedule dualpipev -m 4 $small --check --precision fp32
expect 2 "ranks 3 must be even" run --threads 3 --schedule dualpipe -m 4 $small
[ "$(grep -c "must be even" "$work/err")" -eq 1 ] || fail "a --threads refusal was printed more than once"
# --device: cpu always; cuda says why it cannot run where there is no GPU (or no CUDA in this build).
expect 0 "bit-identical" run --threads 2 --device cpu --schedule 1f1b -m 2 $small --check
"$bin" run --threads 2 --device cuda --schedule 1f1b -m 2 $small --check >"$work/cuda.out" 2>&1
code=$?
if [ $code -ne 0 ]; then
  [ $code -eq 2 ] || fail "--device cuda without a usable GPU exited $code, expected 2"
  grep -q -e "no usable CUDA device" -e "no CUDA device visible" -e "built without CUDA" "$work/cuda.out" \
    || fail "--device cuda failure not explained: $(head -3 "$work/cuda.out")"
fi
expect 2 "needs --device cuda" run --threads 2 --device cpu --comm nccl --schedule 1f1b -m 2 $small

# The watchdog: a rank stopped with SIGSTOP must not hang the job. With --timeout 3 the others give up on
# the transfer they wait for and the job ends, naming the action and the peer, within 10 s of the deadline.
start=$(date +%s)
mpi -n 2 "$bin" run --schedule 1f1b -m 4 --steps 1000000 --timeout 3 --layers 2 --hidden 8 --heads 2 --ffn 8 --seq 4 \
  >"$work/stop.out" 2>&1 &
job=$!
sleep 2
victim=$(pgrep -n -f "run --schedule 1f1b -m 4 --steps 1000000 --timeout 3")
[ -n "$victim" ] && kill -STOP "$victim"
wait "$job"
code=$?
elapsed=$(( $(date +%s) - start ))
[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
[ $code -ne 0 ] || fail "a stopped rank did not fail the job"
[ $elapsed -le 15 ] || fail "the job took $elapsed s to stop after a rank was stopped (deadline 3 s + 2 s start)"
# Where the stopped rank is caught decides the wording: a transfer (action and peer), the barrier before a
# step, or the gather after one (the step).
grep -q -e "from rank [01]: waited 3 s" -e "to rank [01]: waited 3 s" -e "step [0-9]*: waited 3 s" \
  "$work/stop.out" || fail "the watchdog did not say what it waited for: $(head -3 "$work/stop.out")"

# Refusals before running are printed once, by rank 0, naming the rank and the option that differs.
mpi -n 1 "$bin" run --schedule 1f1b -m 4 $small --micro-batch-size 1 : -n 1 "$bin" run --schedule 1f1b -m 4 $small \
  --micro-batch-size 2 >"$work/mb.out" 2>&1
[ $? -eq 2 ] || fail "different --micro-batch-size did not exit 2"
grep -q "rank 1: ranks were started with different arguments: this rank has micro-batch-size=2 where rank 0 has micro-batch-size=1" \
  "$work/mb.out" || fail "the differing option is not named: $(head -3 "$work/mb.out")"
[ "$(grep -c "different arguments" "$work/mb.out")" -eq 1 ] || fail "the refusal was printed more than once"
mpi -n 1 "$bin" run --schedule 1f1b -m 4 $small --check : -n 1 "$bin" run --schedule 1f1b -m 4 $small >"$work/ck.out" 2>&1
grep -q "check=" "$work/ck.out" || fail "--check on one rank only is not named: $(head -3 "$work/ck.out")"
mpi -n 1 "$bin" run --schedule interleaved-1f1b -m 4 -v 2 $small : -n 1 "$bin" run --schedule interleaved-1f1b -m 4 \
  -v 3 $small >"$work/vs.out" 2>&1
grep -q "virtual-stages=" "$work/vs.out" || fail "different --virtual-stages not named: $(head -3 "$work/vs.out")"
mpi -n 1 "$bin" run --model tiny-moe --schedule 1f1b -m 4 --expert-ffn 8 $small : -n 1 "$bin" run --model tiny-moe \
  --schedule 1f1b -m 4 $small >"$work/ef.out" 2>&1
[ $? -eq 2 ] || fail "different --expert-ffn did not exit 2"
grep -q "expert-ffn=" "$work/ef.out" || fail "different --expert-ffn not named: $(head -3 "$work/ef.out")"
mpi -n 2 "$bin" run $small >"$work/none.out" 2>&1
[ $? -eq 2 ] || fail "run without --schedule did not exit 2"
grep -q "no schedule; give --schedule" "$work/none.out" || fail "missing --schedule not explained"
mpi -n 2 "$bin" run --schedule 1f1b -m 4 --hidden 1000000 >"$work/big.out" 2>&1
[ $? -eq 2 ] || fail "--hidden 1000000 did not exit 2"
grep -q "would hold 1e+12 elements" "$work/big.out" || fail "--hidden 1000000 not explained: $(head -2 "$work/big.out")"
mpi -n 2 "$bin" run --schedule 1f1b -m 4 --ep 0 >"$work/ep0.out" 2>&1
[ $? -eq 2 ] || fail "--ep 0 did not exit 2"
[ "$(grep -c "ep is 0" "$work/ep0.out")" -eq 1 ] || fail "--ep 0 not explained once: $(head -3 "$work/ep0.out")"

# MPI is a module beside the program, loaded only by commands that start MPI: a copy of the program
# without it still simulates, and `run` says what is missing.
mkdir -p "$work/alone" && cp "$bin" "$work/alone/pipesim"
"$work/alone/pipesim" simulate --schedule 1f1b --pp 2 -m 4 --format json >/dev/null 2>&1 || fail "simulate needed the MPI module"
"$work/alone/pipesim" run --schedule 1f1b --pp 1 -m 2 $small >"$work/alone.out" 2>&1
[ $? -eq 1 ] || fail "run without the MPI module did not exit 1"
grep -q "MPI: could not load .*pipesim-mpi.so" "$work/alone.out" || fail "the missing MPI module is not named: $(head -3 "$work/alone.out")"

[ "$failures" -eq 0 ] && echo "run CLI: all checks passed"
exit "$failures"
