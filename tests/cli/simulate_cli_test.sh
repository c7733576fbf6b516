#!/bin/sh
# `pipesim simulate` end to end: reports, JSON fields, traces, cost files; bad input exits 2 with a message
# naming the flag or JSON path, and writes nothing. Usage: simulate_cli_test.sh PIPESIM DATA_DIR
set -u
bin=$1
data=$2
. "$(dirname "$0")/lib.sh"


# Uniform costs, no communication. Every number below is a schedule's closed form (the generator's header
# comment) evaluated here, never a value copied from an earlier run: p = 4, m = 8, F = I = 1 ms,
# W = 0.5 ms, B = I + W; 1 GiB of activations per stage and micro-batch, of which W keeps
# w_memory_fraction = 0.25 (the default) after I.
uniform="--pp 4 -m 8 --cost F=1ms,I=1ms,W=0.5ms --activation-memory 1GiB --format json"
given='
p, m, F, I, W, GiB = 4, 8, 1000.0, 1000.0, 500.0, 2**30
B = I + W
ranks = j["ranks"]
eq(len(ranks), p, "ranks")
eq(j["p2p_bytes"], 0, "no activation bytes were given")
for r in ranks: eq(r["idle_us"], j["makespan_us"] - r["busy_us"], "rank %d idle = makespan - busy" % r["rank"])
'
# 1F1B: makespan (m+p-1)(F+B), every rank idle (p-1)(F+B); rank r holds min(p-r, m) forwards at peak.
run_json 1f1b simulate -s 1f1b $uniform
check 1f1b "$given"'
eq(j["schedule"], "1f1b", "schedule")
eq(j["makespan_us"], (m + p - 1) * (F + B), "makespan (m+p-1)(F+B)")
near(j["bubble_rate"], (p - 1) * (F + B) / j["makespan_us"], "bubble rate (p-1)(F+B) / makespan")
for r in ranks:
    eq(r["busy_us"], m * (F + B), "rank %d busy m(F+B)" % r["rank"])
    eq(r["peak_activations"], min(p - r["rank"], m), "rank %d peak activations min(p-r, m)" % r["rank"])
    eq(r["peak_activation_bytes"], min(p - r["rank"], m) * GiB, "rank %d peak bytes" % r["rank"])
'
# The table says the same: the makespan and rank 0's idle time.
expect 0 "makespan 27.500 ms" simulate --schedule 1f1b --pp 4 --microbatches 8 --cost F=1ms,I=1ms,W=0.5ms
expect 0 "^ *0  *20.000 ms  *7.500 ms" simulate -s 1f1b --pp 4 -m 8 --cost F=1ms,I=1ms,W=0.5ms
# GPipe: the same makespan and bubble; every rank holds all m forwards.
run_json gpipe simulate -s gpipe $uniform
check gpipe "$given"'
eq(j["makespan_us"], (m + p - 1) * (F + B), "makespan (m+p-1)(F+B)")
near(j["bubble_rate"], (p - 1) * (F + B) / j["makespan_us"], "bubble rate")
for r in ranks: eq(r["peak_activations"], m, "rank %d peak activations m" % r["rank"])
'
# ZB-H1 (W <= F, W <= I, m >= p): idle (p-1)(F+I-W) on every rank; rank i (1-indexed) holds
# (p-i+1) M_B + (i-1) M_W at peak.
run_json zbh1 simulate -s zb-h1 $uniform
check zbh1 "$given"'
eq(j["makespan_us"], m * (F + I + W) + (p - 1) * (F + I - W), "makespan m(F+I+W) + (p-1)(F+I-W)")
for r in ranks:
    i = r["rank"] + 1
    eq(r["idle_us"], (p - 1) * (F + I - W), "rank %d idle (p-1)(F+I-W)" % r["rank"])
    eq(r["peak_activations"], (p - i + 1) + (i - 1) * 0.25, "rank %d peak (p-i+1) + (i-1)/4" % r["rank"])
    eq(r["peak_activation_bytes"], (p - i + 1) * GiB + (i - 1) * GiB // 4, "rank %d peak bytes" % r["rank"])
'
# ZB-H2 (W <= F, 2W <= I, m >= 2p-1): idle (p-1)(F+I-2W); rank i holds (2p-2i+1) M_B + (2i-2) M_W.
run_json zbh2 simulate -s zb-h2 $uniform
check zbh2 "$given"'
for r in ranks:
    i = r["rank"] + 1
    eq(r["idle_us"], (p - 1) * (F + I - 2 * W), "rank %d idle (p-1)(F+I-2W)" % r["rank"])
    eq(r["peak_activations"], (2 * p - 2 * i + 1) + (2 * i - 2) * 0.25, "rank %d peak" % r["rank"])
'
# ZB-V: no bubble when F = I = W and m >= 2p-1.
run_json zbv simulate -s zb-v --pp 4 -m 8 --cost F=1ms,I=1ms,W=1ms --format json
check zbv 'eq(j["bubble_rate"], 0, "ZB-V bubble rate with F = I = W")'
# --cost-per-rank gives every schedule the same work: each rank is busy m(F+I+W), whatever the chunking.
# Interleaved 1F1B (v = 2 chunks of half cost) then idles (p-1)(F+B)/v.
names="gpipe 1f1b interleaved-1f1b zb-h1 zb-h2 zb-v dualpipe dualpipev"
run_json all simulate -s "$(echo $names | tr ' ' ,)" --pp 4 -m 8 --cost F=1ms,I=1ms,W=0.5ms --cost-per-rank --format json
check all "
eq([s['schedule'] for s in j], '$names'.split(), 'one report per schedule, in order')"'
for s in j:
    for r in s["ranks"]:
        eq(r["busy_us"], 8 * 2500.0, "%s rank %d busy m(F+I+W)" % (s["schedule"], r["rank"]))
        if s["schedule"] == "interleaved-1f1b":
            eq(r["idle_us"], 3 * 2500.0 / 2, "interleaved rank %d idle (p-1)(F+B)/v" % r["rank"])
'
expect 0 "cost-per-rank to compare" simulate -s 1f1b,zb-v --pp 4 -m 8
# DualPipe (F = I, max(F, B) < F&B < F+B, W < I): the largest idle time is (p/2-1)(F&B+B-3W).
run_json dualpipe simulate -s dualpipe --pp 8 -m 20 --cost F=1ms,I=1ms,W=0.5ms,FB=2.2ms --format json
check dualpipe '
eq(max(r["idle_us"] for r in j["ranks"]), (8 / 2 - 1) * (2200.0 + 1500.0 - 3 * 500.0), "largest idle (p/2-1)(F&B+B-3W)")
'
# Point-to-point traffic: one activation forward and one gradient back per stage boundary and micro-batch.
run_json p2p simulate -s 1f1b --pp 4 -m 8 --activation-bytes 1MiB --p2p-latency 20us --format json
check p2p 'eq(j["p2p_bytes"], 2 * (4 - 1) * 8 * 2**20, "p2p bytes 2(p-1)m x 1 MiB")'
expect 0 "Examples:" simulate --help
# The cost file: stages 0 and 3 have F = 1.5 ms, stage 3 has B = 2 ms, rank 2 runs at half speed.
run_json costfile simulate -s 1f1b --pp 4 -m 8 --cost-file "$data/costs.json" --format json
check costfile '
want = [8 * (1.5 + 1.5), 8 * (1 + 1.5), 8 * 2 * (1 + 1.5), 8 * (1.5 + 2)]
eq([r["busy_us"] / 1000 for r in j["ranks"]], want, "busy ms per rank: m(F+B) per stage, twice on rank 2")
for r in j["ranks"]: eq(r["idle_us"], j["makespan_us"] - r["busy_us"], "rank %d idle" % r["rank"])
'
# -o writes the same report, atomically.
"$bin" simulate -s 1f1b --pp 4 -m 8 --cost-file "$data/costs.json" --format json -o "$work/report.json" || fail "-o"
cmp -s "$work/report.json" "$work/costfile.json" || fail "the report written with -o differs from standard output"
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
expect 2 "--pp: dualpipe: ranks 3 must be even" simulate -s dualpipe --pp 3 -m 12 --trace "$work/never.json"
[ -e "$work/never.json" ] && fail "a trace was written for bad input"
ls "$work" | grep -q '\.tmp\.' && fail "temporary file left behind"

[ "$failures" -eq 0 ] && echo "simulate CLI: all checks passed"
exit "$failures"
