#!/bin/sh
# `pipesim import`, `calibrate --trace` and `simulate --phases` end to end: DeepSeek's H800 trace and
# traces written here; truncated, non-JSON, wrong-schema and empty traces exit 2 naming the file and the
# byte offset or JSON path, and write nothing. Usage: import_cli_test.sh PIPESIM DEEPSEEK_TRACE
set -u
bin=$1
trace=$2
. "$(dirname "$0")/lib.sh"
ds="--model deepseek-v3 --ep 64 --precision fp8 --selective-recompute"

# Two ranks of 1F1B over two micro-batches, as PyTorch pipelining annotates them (PP:0F0, ...): every
# action one 100 us (F) or 200 us (B) kernel, 10 us apart; rank 1 also runs an unknown kernel.
python3 - "$work/run" <<'PY'
import json, os, sys
out = sys.argv[1]; os.makedirs(out)
programs = {0: ["0F0", "0F1", "0B0", "0B1"], 1: ["1F0", "1B0", "1F1", "1B1"]}
start = {"0F0": 0, "0F1": 110, "1F0": 110, "1B0": 220, "0B0": 430, "1F1": 430, "1B1": 540, "0B1": 750}
for rank, program in programs.items():
    ev, corr = [], 1
    for i, a in enumerate(program):
        cpu = 1000 + 30 * i
        dur = 100 if "F" in a else 200
        ev.append({"ph": "X", "cat": "user_annotation", "name": "PP:" + a, "pid": 5, "tid": 5, "ts": cpu, "dur": 20})
        ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 5, "tid": 5, "ts": cpu + 5, "dur": 3, "args": {"correlation": corr}})
        ev.append({"ph": "X", "cat": "kernel", "name": "ampere_bf16_s16816gemm_bf16_128x128", "pid": 0, "tid": 7, "ts": 5000 + start[a], "dur": dur, "args": {"correlation": corr, "stream": 7, "device": 0}})
        corr += 1
    if rank == 1:
        ev.append({"ph": "X", "cat": "kernel", "name": "mystery_kernel", "pid": 0, "tid": 7, "ts": 4000, "dur": 5, "args": {"correlation": 99, "stream": 7}})
    json.dump({"schemaVersion": 1, "traceEvents": ev}, open(f"{out}/worker.rank{rank}.pt.trace.json", "w"))
PY
gzip -k "$work/run/worker.rank1.pt.trace.json" && mv "$work/run/worker.rank1.pt.trace.json" "$work/rank1-plain.json"
"$bin" import "$work/run" -o "$work/run.json" --ops "$work/ops.csv" 2>"$work/err" || fail "import of the 2-rank run: $(cat "$work/err")"
grep -q "1 kernel name(s) matched no classification rule" "$work/err" || fail "import did not note the unclassified kernel"
cp "$work/run.json" "$work/imported.json"
check imported '
eq(j["source"], "measured", "source")
eq(len(j["steps"]), 1, "one step")
spans = j["steps"][0]
eq(len(spans), 8, "eight actions")
want = {"0F0": (0, 100), "0F1": (110, 210), "1F0": (110, 210), "1B0": (220, 420), "0B0": (430, 630), "1F1": (430, 530), "1B1": (540, 740), "0B1": (750, 950)}
for s in spans:
    rank, stream, action, start, end = s[:5]
    eq((start, end), (want[action][0] * 1000, want[action][1] * 1000), action)
'
grep -q "^1,PP:1B0,gemm.bf16,1,200.000$" "$work/ops.csv" || fail "ops.csv lacks rank 1's PP:1B0 row: $(cat "$work/ops.csv")"
expect 0 "mystery_kernel" import "$work/run" --report
"$bin" calibrate "$work/run.json" -o "$work/calibration.json" || fail "calibrate of an imported run failed"
[ -s "$work/calibration.json" ] || fail "calibrate of an imported run wrote no calibration"

if [ -f "$trace" ]; then
  # DeepSeek's trace: every kernel classified, ten phases of four instances, compute/comm overlap.
  run_json ds import "$trace" --format json
  check ds '
  eq(j["ranks"], 1, "ranks")
  eq(j["device"], "NVIDIA H800", "device")
  eq(len(j["phases"]), 10, "phases")
  eq(j["unclassified"], {}, "unclassified kernels")
  for p in j["phases"]: eq(p["instances"], 4, p["phase"])
  eq(j["classes"]["gemm.fp8"]["kernels"], 140, "FP8 GEMM kernels")
  r = j["per_rank"][0]
  ok(r["overlap_us"] > 0.8 * r["comm_busy_us"], "communication mostly hidden under compute")
  '
  gzip -c "$trace" >"$work/train.json.gz"
  run_json dsgz import "$work/train.json.gz" --format json
  check dsgz '
  plain = json.load(open(os.path.join(work, "ds.json")))
  for r in j["per_rank"] + plain["per_rank"]: r.pop("source")
  eq(j, plain, "the gzip trace report")
  '
  expect 2 "no annotation names a pipeline action" import "$trace" -o "$work/none.json"
  [ -e "$work/none.json" ] && fail "import wrote a timeline for a trace without actions"
  expect 2 "do not form a complete schedule" import "$trace" --action '^1F1B$=FB' -o "$work/none.json"
  expect 2 "kind 'X'" import "$trace" --action 'attn=X'

  # Calibration from kernel times, then the phases of the traced pair predicted (docs/validation.md §6).
  expect 0 "residual" calibrate --trace "$trace" $ds -o "$work/h800.json"
  run_json phases simulate --phases $ds --hw-profile "$work/h800.json" --against "$trace" --format json
  check phases '
  eq(len(j["phases"]), 10, "phases")
  for p in j["phases"]: ok(abs(p["error"]) < 0.10, "%s: error %.3f" % (p["phase"], p["error"]))
  ok(abs(j["pair_error"]) < 0.05, "pair error %.3f" % j["pair_error"])
  '
  run_json achieved import "$trace" $ds --format json
  check achieved '
  rates = {r["phase"]: r for r in j["achieved"]}
  eq(len(rates), 10, "phases with achieved rates")
  for name in ("attn(F)", "mlp(F)", "mlp(B)"):
      ok(0.25 * 1979 < rates[name]["gemm_tflops"] < 0.6 * 1979, "%s: FP8 GEMMs at %.0f TFLOP/s" % (name, rates[name]["gemm_tflops"]))
  ok(rates["dispatch(F)"]["all_to_all_GBps"] < 40, "dispatch below the 40 GB/s the cluster assumes")
  '
  expect 0 "dispatch(F)" simulate --phases --model deepseek-v3 --ep 64 --precision fp8
  expect 2 "no MoE layer" simulate --phases --model llama3-70b
  expect 2 "unknown hardware profile 'nosuch'" simulate --phases $ds --hw-profile nosuch
  printf '{"name":"x","gpu":"H800","source":"s","gemm_tflops":{"bf16":{"points":[{"x":2,"y":1},{"x":1,"y":2}],"source":"s"}}}' >"$work/bad-profile.json"
  expect 2 "gemm_tflops.bf16.points\[1\].x" simulate --phases $ds --hw-profile "$work/bad-profile.json"

else
  echo "note: no DeepSeek trace at $trace; its checks are skipped"
fi

# Bad traces: exit 2, the file and where, nothing written. The sample: DeepSeek's trace, else a written one.
sample=$trace
[ -f "$sample" ] || sample=$work/rank1-plain.json
head -c $(($(wc -c <"$sample") / 2)) "$sample" >"$work/truncated.json"
gzip -c "$sample" >"$work/sample.json.gz"
expect 2 "truncated.json: byte" import "$work/truncated.json" -o "$work/out.json"
printf 'this is not json' >"$work/text.json"
expect 2 "text.json: byte" import "$work/text.json" -o "$work/out.json"
printf '{"traceEvents": {"ph": "X"}}' >"$work/schema.json"
expect 2 "schema.json: traceEvents" import "$work/schema.json" -o "$work/out.json"
printf '{"traceEvents": [{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": "soon", "dur": 1}]}' >"$work/ts.json"
expect 2 'ts.json: traceEvents\[0\].ts' import "$work/ts.json" -o "$work/out.json"
: >"$work/empty.json"
expect 2 "empty.json" import "$work/empty.json" -o "$work/out.json"
head -c $(($(wc -c <"$work/sample.json.gz") / 2)) "$work/sample.json.gz" >"$work/cut.json.gz"
expect 2 "cut.json.gz" import "$work/cut.json.gz" -o "$work/out.json"
expect 2 "does not exist" import "$work/nosuch.json"
printf '{"rules": [{"class": "gemm", "pattern": "x"}]}' >"$work/rules.json"
expect 2 "rules\[0\].class" import "$sample" --rules "$work/rules.json"
printf '{"rules": [{"class": "gemm.fp8", "pattern": "(("}]}' >"$work/rules.json"
expect 2 "rules\[0\].pattern" import "$sample" --rules "$work/rules.json"
[ -f "$trace" ] && expect 2 "capture group 1" import "$trace" --action '^(attn)\(F\)$=F'
expect 2 "unknown model 'bogus'" import "$sample" --report --model bogus --ops "$work/out.json"
expect 2 "requires --phases" simulate --against "$sample" --model deepseek-v3
expect 2 "pair-layers" simulate --phases $ds --pair-layers 0
printf '{"name":"x","gpu":"H800","source":"s","gemm_tflops":{"bf16":{"points":[{"x":1,"y":100}],"source":"s"}},"attention_forward_tflops":{"value":1,"source":"s"},"attention_backward_tflops":{"value":1,"source":"s"},"memory_GBps":{"value":1e-300,"source":"s"},"launch_gap_us":{"value":0,"source":"s"},"comm_compute_slowdown":{"value":0,"source":"s"},"pair_stall_fraction":{"value":0,"source":"s"}}' >"$work/tiny-profile.json"
expect 2 "memory_GBps.value" simulate --phases $ds --hw-profile "$work/tiny-profile.json"
sed 's/"bf16"/"fp8"/' "$work/tiny-profile.json" >"$work/fp8-profile.json"
expect 2 "needs a bf16 table" simulate --phases $ds --hw-profile "$work/fp8-profile.json"
[ -e "$work/out.json" ] && fail "a failed import wrote its output"

[ "$failures" -eq 0 ] && echo "import CLI: all passed"
exit "$failures"
