#!/bin/sh
# Models on clusters end to end: `simulate --model`, `sweep` (threads, and under mpirun split over ranks
# with the same result), `study`; bad plans exit 2 naming the field. Usage: model_cli_test.sh PIPESIM MPIEXEC
set -u
bin=$1
mpiexec=${2:-}
. "$(dirname "$0")/lib.sh"

# step(report, what): what a step report must satisfy by itself.
checker_extra='
def step(s, what):
    p = s["plan"]
    eq(p["global_batch"], p["dp"] * p["microbatches"] * p["micro_batch_size"], what + ": global batch = dp x m x mbs")
    near(s["tokens_per_s"], p["global_batch"] * p["seq"] / (s["step_us"] / 1e6), what + ": tokens/s = batch x seq / step")
    near(s["tokens_per_day"], 86400 * s["tokens_per_s"], what + ": tokens/day")
    ok(0 < s["pipeline_us"] <= s["step_us"], what + ": the pipeline lies within the step")
    ok(0 < s["mfu_causal"] <= s["mfu_full_attention"] < 1, what + ": 0 < MFU (causal) <= MFU (full attention) < 1")
    ok(0 <= s["bubble_rate"] < 1, what + ": bubble rate in [0, 1)")
    eq(len(s["ranks"]), p["pp"], what + ": one rank per pipeline stage")
    for r in s["ranks"]:
        near(r["busy_us"] + r["idle_us"], s["pipeline_us"], what + ": rank %d busy + idle = pipeline" % r["rank"])
        m = r["memory_bytes"]
        near(m["total"], m["params"] + m["grads"] + m["optimizer"] + m["activations"], what + ": rank %d memory" % r["rank"])
    eq(s["fits"], all(r["memory_bytes"]["total"] <= s["capacity_bytes"] for r in s["ranks"]), what + ": fits")
'

# DeepSeek-V3 on its 2048 H800s (256 nodes x 8). Reports are checked against themselves: the batch, the
# throughput and the memory must add up; the table must say what the JSON says.
ds="--model deepseek-v3 --cluster deepseek-h800 --pp 16 --ep 64 --precision fp8 --selective-recompute"
run_json ds simulate $ds --schedule dualpipe --microbatches 40 --format json
"$bin" simulate $ds --schedule dualpipe --microbatches 40 >"$work/ds.txt" 2>&1 || fail "dualpipe table"
check ds '
step(j, "dualpipe")
p = j["plan"]
eq([j["schedule"], p["pp"], p["ep"], p["microbatches"]], ["dualpipe", 16, 64, 40], "the plan asked for")
eq(p["pp"] * p["dp"] * p["tp"], 256 * 8, "pp x dp x tp = the cluster GPUs")
eq(j["simulated_replicas"], 1, "one representative replica")
ok(j["ep_compute_comm_ratio"] > 0, "EP compute:communication is reported")
table = open(work + "/ds.txt").read()
eq(j["flops_convention"], "pipesim", "the default convention")
eq(j["mfu"], j["mfu_causal"], "pipesim counts causal attention")
for line in ["MFU %.1f%% (pipesim convention, %.1f GFLOP/token; causal attention %.1f%%, full attention %.1f%%)   bubble rate %.4f"
             % (100 * j["mfu"], j["flops_per_token"] / 1e9, 100 * j["mfu_causal"], 100 * j["mfu_full_attention"], j["bubble_rate"]),
             "EP compute:communication %.2f : 1" % j["ep_compute_comm_ratio"],
             "global batch %d" % p["global_batch"]]:
    ok(line in table, "the table lacks \"%s\":\n%s" % (line, table))
'
expect 0 "one representative GPU per pipeline stage" simulate $ds --schedule zb-v --microbatches 40
expect 0 "simulated all 128 data-parallel replicas" simulate $ds --schedule 1f1b --microbatches 32 --full
run_json full simulate $ds --schedule 1f1b --microbatches 32 --full --format json
check full 'step(j, "--full"); eq(j["simulated_replicas"], j["plan"]["dp"], "--full simulates every replica")'
expect 0 "DOES NOT FIT" simulate --model llama3-405b --cluster hgx-h200 --pp 2 --schedule 1f1b -m 8
run_json big simulate --model llama3-405b --cluster hgx-h200 --pp 2 --schedule 1f1b -m 8 --format json
check big 'step(j, "405B on one node"); eq(j["fits"], False, "405B on 16 GPUs fits")'
# Several schedules, one plan: the same tokens per step and the same FLOPs, so tokens/s x step and
# MFU x step agree across schedules.
run_json two simulate $ds --schedule 1f1b,dualpipev --microbatches 40 --format json
check two '
eq([s["schedule"] for s in j], ["1f1b", "dualpipev"], "one report per schedule, in order")
for s in j: step(s, s["schedule"])
near(j[0]["tokens_per_s"] * j[0]["step_us"], j[1]["tokens_per_s"] * j[1]["step_us"], "tokens per step")
near(j[0]["mfu_causal"] * j[0]["step_us"], j[1]["mfu_causal"] * j[1]["step_us"], "FLOPs per step")
'
# --global-batch instead of --microbatches: each schedule gets global batch / (dp x micro-batch size).
run_json gb simulate --model llama3-70b --cluster dgx-h100 --pp 8 --schedule 1f1b,zb-h1,zb-v --global-batch 1024 --format json
check gb '
eq([s["schedule"] for s in j], ["1f1b", "zb-h1", "zb-v"], "one report per schedule, in order")
for s in j:
    p = s["plan"]
    step(s, s["schedule"])
    eq(p["global_batch"], 1024, s["schedule"] + ": global batch")
    eq(p["microbatches"], 1024 // (p["dp"] * p["micro_batch_size"]), s["schedule"] + ": microbatches = 1024 / (dp x mbs)")
'
"$bin" simulate $ds --schedule dualpipe --microbatches 40 --trace "$work/ds.json" >/dev/null || fail "trace"
grep -q '"EP all-to-all"' "$work/ds.json" || fail "trace lacks the EP stream"
grep -q '"reduce-scatter gradients"' "$work/ds.json" || fail "trace lacks the DP stream"

# Sweep: table, CSV, JSON; invalid points kept with their reason; the Pareto front (step time against
# peak memory) marked. The front is recomputed here, and each point must agree with `simulate` and with
# the other points of the same plan.
run_json sweep sweep $ds --vary schedule=1f1b,dualpipe,zb-h2 --vary pp=8,16,7 --vary microbatches=32,48 --format json
run_json point simulate $ds --schedule dualpipe --microbatches 32 --format json  # pp 16
check sweep '
eq([(r["schedule"], r["pp"], r["microbatches"]) for r in j],
   [(s, p, m) for s in ["1f1b", "dualpipe", "zb-h2"] for p in ["8", "16", "7"] for m in ["32", "48"]],
   "every point, the first axis slowest")
valid = [r for r in j if r["error"] == ""]
for r in j:
    ok((r["error"] == "") == (r["pp"] != "7"), "only pp 7 (which does not divide 2048 GPUs) is invalid: %s" % r)
def dominates(a, b):
    return (a["step_s"] <= b["step_s"] and a["peak_memory_gib"] <= b["peak_memory_gib"]
            and (a["step_s"] < b["step_s"] or a["peak_memory_gib"] < b["peak_memory_gib"]))
for r in j:
    front = r["error"] == "" and not any(dominates(o, r) for o in valid)
    eq(r["pareto"], front, "pareto mark of %s" % r)
ok(any(r["pareto"] for r in j), "the front is not empty")
ratio = valid[0]["mfu"] / valid[0]["tokens_per_s"]
for r in valid:
    near(r["mfu"] / r["tokens_per_s"], ratio, "MFU per token/s is one model on one cluster: %s" % r)
    for o in valid:
        if (o["pp"], o["microbatches"]) == (r["pp"], r["microbatches"]):
            near(o["tokens_per_s"] * o["step_s"], r["tokens_per_s"] * r["step_s"], "tokens per step of one plan")
s = json.load(open(work + "/point.json"))
r = [r for r in j if (r["schedule"], r["pp"], r["microbatches"]) == ("dualpipe", "16", "32")][0]
near(r["step_s"], s["step_us"] / 1e6, "sweep step = simulate step")
near(r["tokens_per_s"], s["tokens_per_s"], "sweep tokens/s = simulate")
near(r["mfu"], s["mfu_causal"], "sweep MFU = simulate MFU (causal)")
near(r["bubble_rate"], s["bubble_rate"], "sweep bubble rate = simulate")
near(r["peak_memory_gib"], max(x["memory_bytes"]["total"] for x in s["ranks"]) / 2**30, "sweep peak memory")
eq(r["fits"], s["fits"], "sweep fits = simulate")
'
"$bin" sweep $ds --vary schedule=1f1b,dualpipe,zb-h2 --vary pp=8,16,7 --vary microbatches=32 --format csv -o "$work/s.csv" 2>/dev/null \
  || fail "sweep csv"
head -1 "$work/s.csv" | grep -q "^schedule,pp,microbatches,step_s" || fail "csv header: $(head -1 "$work/s.csv")"
[ "$(wc -l < "$work/s.csv")" -eq 10 ] || fail "csv should have 9 points + header"
grep -q "pp 7 x tp 1 does not divide" "$work/s.csv" || fail "invalid point lacks its reason"
grep -q ",yes," "$work/s.csv" || fail "no point marked on the Pareto front"
if [ -n "$mpiexec" ]; then
  "$bin" sweep $ds --vary schedule=1f1b,zb-v,dualpipe --vary microbatches=32,64 --format json -o "$work/one.json" 2>/dev/null
  # Leak checks stay on; Open MPI's C allocations are suppressed (tests/lsan-openmpi.supp).
  ASAN_OPTIONS="${ASAN_OPTIONS:-}" LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")/.." && pwd)/lsan-openmpi.supp" \
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

# --nodes resizes a preset: Megatron's 1T run on 3072 A100s (384 DGX nodes; the preset has 280).
run_json nodes simulate --model megatron-1t --cluster dgx-a100 --nodes 384 --pp 64 --tp 8 -m 512 --format json
check nodes '
eq(j["plan"]["dp"], 3072 // (64 * 8), "dp from 384 x 8 GPUs")
eq(j["plan"]["global_batch"], 6 * 512, "global batch")
'
expect 2 "does not divide the cluster's 2240 GPUs" simulate --model megatron-1t --cluster dgx-a100 --pp 64 --tp 8 -m 512
expect 2 "nodes" simulate --model megatron-1t --cluster dgx-a100 --nodes 0 --pp 64 --tp 8
# BF16 Adam moments shrink the optimizer shard by a third; fp32 keeps 12 bytes per parameter.
run_json m16 simulate $ds --schedule 1f1b -m 32 --adam-moments bf16 --format json
run_json m32 simulate $ds --schedule 1f1b -m 32 --adam-moments fp32 --format json
check m16 '
fp32 = json.load(open(os.path.join(work, "m32.json")))
for a, b in zip(j["ranks"], fp32["ranks"]):
    near(a["memory_bytes"]["optimizer"] * 12, b["memory_bytes"]["optimizer"] * 8, "rank %d optimizer 8 vs 12 bytes" % a["rank"], 1e-9)
'

# FLOPs conventions: one step time, MFU in proportion to each convention's FLOPs per token; the default
# is pipesim's causal count; deepseek leaves out the MTP module, megatron and palm count full attention.
run_json fd simulate $ds --schedule 1f1b -m 32 --flops-convention deepseek --format json
run_json fm simulate $ds --schedule 1f1b -m 32 --flops-convention megatron --format json
check fd '
m = json.load(open(os.path.join(work, "fm.json")))
eq(j["flops_convention"], "deepseek", "convention named")
eq(j["step_us"], m["step_us"], "the convention changes no time")
near(j["mfu"] / j["flops_per_token"], m["mfu"] / m["flops_per_token"], "MFU in proportion to FLOPs per token")
near(j["mfu"] * j["step_us"], j["flops_per_token"] * j["plan"]["global_batch"] * j["plan"]["seq"] / (2048 * 989e12) * 1e6, "MFU = FLOPs / (GPUs x BF16 peak x step)", 1e-6)
ok(j["flops_per_token"] < m["flops_per_token"], "no MTP and causal attention count less than megatron")
ok(j["mfu"] < j["mfu_causal"] < m["mfu"], "deepseek < pipesim (causal) < megatron")
'
expect 2 "flops-convention" simulate $ds --schedule 1f1b -m 32 --flops-convention hfu

[ "$failures" -eq 0 ] && echo "model CLI: all checks passed"
exit "$failures"
