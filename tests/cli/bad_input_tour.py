#!/usr/bin/env python3
"""The bad-input tour (issue 12): hundreds of wrong inputs across every subcommand, each of which must end
with exit 2, a message naming what was wrong, within a time limit, with no crash, no hang, no internal
error and no output file left behind. Usage: bad_input_tour.py PIPESIM WORKDIR [--list]"""
import os
import subprocess
import sys

BIN, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)


def path(name, text=None, binary=None):
    p = os.path.join(WORK, name)
    if text is not None:
        open(p, "w").write(text)
    if binary is not None:
        open(p, "wb").write(binary)
    return p


FOLDER = WORK
MISSING = os.path.join(WORK, "no-such-file.json")
EMPTY = path("empty.json", "")
GARBAGE = path("garbage.bin", binary=bytes(range(256)) * 4)
TRUNCATED = path("truncated.json", '{"schedule": "1f1b", "ranks": 2, "stages": 2, "programs": [[')
HUGE_NUMBER = path("huge.json", '{"name": "x", "layers": 1e400}')
ARRAY = path("array.json", "[1, 2, 3]")
NOT_OBJECT = path("string.json", '"hello"')

cases = []  # (args, fragment or None, expected code)


def case(args, fragment=None, code=2):
    cases.append((args, fragment, code))


# Numbers: every sized option of the schedule commands, with values that are no size.
for cmd in (["schedule", "-s", "1f1b"], ["simulate", "-s", "1f1b", "--cost", "F=1ms,I=1ms,W=1ms"]):
    for opt in ("--pp", "-m", "-v"):
        for bad in ("0", "-1", "abc", "1.5", "99999999999", ""):
            args = cmd + ([opt, bad] if bad != "" else [opt])
            if opt == "-v":
                args = cmd[:2] + ["interleaved-1f1b"] + cmd[3:] + ["--pp", "2", "-m", "4", opt] + ([bad] if bad else [])
            case(args, opt.lstrip("-")[:2] if bad else None)

# Schedules: unknown names, impossible sizes, CSV files that are no schedule.
for name in ("nosuch", "1F1B ", "", "1f1b,,zb-h1", "dualpipe,nosuch"):
    case(["schedule", "-s", name, "--pp", "4", "-m", "8"], None)
for sched, pp, m in (("dualpipe", 3, 8), ("dualpipev", 4, 3), ("interleaved-1f1b", 4, 6), ("zb-v", 0, 8),
                     ("dualpipe", 2, 1), ("gpipe", 5000, 8), ("1f1b", 4096, 5000)):
    case(["schedule", "-s", sched, "--pp", str(pp), "-m", str(m)], None)
csvs = {
    "unknown-op.csv": "0X0,0F1\n", "no-stage.csv": "F0,B0\n", "negative.csv": "0F-1,0B-1\n",
    "huge-mb.csv": "0F0,0F2147483647\n", "huge-stage.csv": "2147483647F0\n", "missing-b.csv": "0F0\n1F0,1B0\n",
    "twice.csv": "0F0,0F0,0B0,0B0\n", "deadlock.csv": "0F0,0B0\n1B0,1F0\n", "letters.csv": "zzz\n",
    "commas.csv": ",,,,\n", "binary.csv": None,
}
for name, text in csvs.items():
    p = path(name, text) if text is not None else GARBAGE
    case(["schedule", "--from-csv", p], None)
    case(["simulate", "--from-csv", p, "--cost", "F=1ms,I=1ms,W=1ms"], None)
for f in (MISSING, FOLDER, EMPTY):
    case(["schedule", "--from-csv", f], None)

# Costs: malformed --cost strings and cost files.
for cost in ("F=", "F=abc", "X=1ms", "F=1ms,I", "F=-1ms,I=1ms,W=1ms", "F=1e30s,I=1ms,W=1ms", "F=1fortnight",
             "F=0ms,I=1ms,W=1ms", "F=1ms,I=1ms,W=1ms,FB=-2ms", "=1ms", "F=1ms;I=1ms", "F=nan", "F=infms",
             "F=1ms,I=1ms,W=1ms,B=0s", "F=9e9s,I=9e9s,W=9e9s", "F=1,I=1,W=1"):
    case(["simulate", "-s", "1f1b", "--pp", "2", "-m", "4", "--cost", cost], None)
cost_files = {
    "c-default-number.json": '{"default": 5}', "c-stage-range.json": '{"stages": {"99": {"F": "1ms"}}}',
    "c-slow-negative.json": '{"ranks": {"0": {"slowdown": -1}}}', "c-slow-huge.json": '{"ranks": {"0": {"slowdown": 1e300}}}',
    "c-bandwidth-zero.json": '{"p2p": {"bandwidth": "0GB/s"}}', "c-bandwidth-tiny.json":
    '{"default": {"F": "1ms", "I": "1ms", "W": "1ms", "activation_bytes": "1MB"}, "p2p": {"bandwidth": "1e-300GB/s"}}',
    "c-unknown-key.json": '{"defaults": {}}', "c-wmf.json": '{"w_memory_fraction": 2}', "c-huge.json": '{"default": {"F": 1e400}}',
    "c-latency-text.json": '{"p2p": {"latency": "soon"}}', "c-rank-name.json": '{"ranks": {"zero": {"slowdown": 2}}}',
}
for name, text in cost_files.items():
    case(["simulate", "-s", "1f1b", "--pp", "2", "-m", "4", "--cost-file", path(name, text)], None)
for f in (MISSING, FOLDER, EMPTY, GARBAGE, TRUNCATED, ARRAY, NOT_OBJECT):
    case(["simulate", "-s", "1f1b", "--pp", "2", "-m", "4", "--cost-file", f], None)
for opt, bad in (("--p2p-latency", "20"), ("--p2p-latency", "-1us"), ("--p2p-bandwidth", "0GB/s"),
                 ("--p2p-bandwidth", "fast"), ("--activation-bytes", "-5MB"), ("--activation-bytes", "lots"),
                 ("--activation-memory", "1e40TB"), ("--w-memory-fraction", "2"), ("--w-memory-fraction", "-0.1")):
    case(["simulate", "-s", "1f1b", "--pp", "2", "-m", "4", "--cost", "F=1ms,I=1ms,W=1ms", opt, bad], None)

# Models on clusters: unknown presets, broken files, impossible plans, out-of-range flags.
base = ["simulate", "--model", "llama3-70b", "--cluster", "dgx-h100", "--pp", "8", "-s", "1f1b", "-m", "8"]
model_bad = [("--model", "gpt-9"), ("--model", MISSING), ("--model", FOLDER), ("--model", EMPTY), ("--model", GARBAGE),
             ("--model", HUGE_NUMBER), ("--model", ARRAY), ("--cluster", "moon-base"), ("--cluster", EMPTY),
             ("--cluster", TRUNCATED), ("--hw-profile", "h9000"), ("--hw-profile", ARRAY), ("--nodes", "0"),
             ("--nodes", "-3"), ("--tp", "0"), ("--tp", "3"), ("--ep", "0"), ("--ep", "3"), ("--dp", "0"), ("--dp", "-4"),
             ("--micro-batch-size", "0"), ("--seq", "0"), ("--seq", "2000000000"), ("--global-batch", "0"),
             ("--global-batch", "3"), ("--layers-per-stage", "1,2"), ("--layers-per-stage", "a,b"),
             ("--layers-per-stage", "81,0,0,0,0,0,0,0"), ("--placement", "dp-first"), ("--precision", "fp4"),
             ("--adam-moments", "fp8"), ("--flops-convention", "hfu"), ("--straggler", "17"), ("--straggler", "x=2"),
             ("--straggler", "0=0"), ("--straggler", "0=-1"), ("--straggler", "99999=2"), ("--straggler", "0=abc")]
for opt, bad in model_bad:
    case(base + [opt, bad], None)
case(["simulate", "--model", "deepseek-v3", "--cluster", "deepseek-h800", "--pp", "16", "--ep", "48", "-s", "1f1b",
      "-m", "32"], "ep 48")
case(["simulate", "--model", "llama3-70b", "--cluster", "dgx-h100", "--pp", "3", "-s", "dualpipe", "-m", "8"], None)
case(["simulate", "--model", "llama3-70b", "--cluster", "dgx-h100", "--pp", "8", "-s", "nosuch", "-m", "8"], "nosuch")
case(["simulate", "--phases", "--model", "llama3-70b"], None)

# Sweep and study.
for bad in (["-j", "0"], ["-j", "-1"], ["-j", "100000"], ["--vary", "pp=abc"], ["--vary", "nosuch=1,2"],
            ["--vary", "pp="], ["-s", "nosuch"], ["--model", "gpt-9"], ["--format", "xml"]):
    case(["sweep", "--model", "llama3-70b", "--cluster", "dgx-h100", "-s", "1f1b", "--pp", "8", "-m", "8"] + bad, None)
for bad in (["--schedules", "1f1b,nosuch"], ["--schedules", ""], ["--model", "gpt-9"], ["-m", "0"], ["--pp", "-2"]):
    case(["study"] + bad, None)

# Files the analysis commands read.
good_run = path("run.json")
subprocess.run([BIN, "run", "--threads", "2", "--schedule", "1f1b", "-m", "4", "--steps", "2", "--layers", "2",
                "--hidden", "8", "--heads", "2", "--ffn", "8", "--seq", "4", "--timeline", good_run],
               capture_output=True, timeout=120, check=True)
good_cal = path("cal.json")
subprocess.run([BIN, "calibrate", good_run, "-o", good_cal], capture_output=True, timeout=60, check=True)
predicted = path("pred.json")
subprocess.run([BIN, "simulate", "--calibration", good_cal, "--timeline", predicted], capture_output=True, timeout=60,
               check=True)
text = open(good_run).read()
mutations = {
    "r-no-steps.json": text.replace('"steps"', '"stepz"'), "r-half.json": text[: len(text) // 2],
    "r-ranks.json": text.replace('"ranks": 2', '"ranks": 1000000', 1), "r-ranks-zero.json": text.replace('"ranks": 2', '"ranks": 0', 1),
    "r-stages.json": text.replace('"stages": 2', '"stages": 7', 1), "r-mb.json": text.replace('"microbatches": 4', '"microbatches": -4', 1),
    "r-programs.json": text.replace('"programs"', '"programz"'),
    "r-name.json": text.replace('"schedule": "1f1b"', '"schedule": "nosuch"', 1),
}
for name, body in mutations.items():
    p = path(name, body)
    case(["calibrate", p], None)
    case(["compare", p, predicted], None)
for f in (MISSING, FOLDER, EMPTY, GARBAGE, TRUNCATED, ARRAY, NOT_OBJECT, good_cal):
    case(["calibrate", f], None)
    case(["compare", f, predicted], None)
    case(["compare", good_run, f], None)
    if f != good_cal:
        case(["simulate", "--calibration", f], None)
# A sweep reports an impossible point in its error column and goes on (a sweep is many plans).
case(["sweep", "--model", "llama3-70b", "--cluster", "dgx-h100", "-s", "1f1b", "--pp", "8", "-m", "8", "--vary", "pp=0,2"],
     "pp 0", 0)
case(["calibrate", predicted], "predicted timeline")
case(["calibrate", good_run, "-o", FOLDER], "folder")
case(["calibrate", good_run, "-o", os.path.join(WORK, "missing", "dir", "c.json")], "does not exist")
case(["simulate", "--calibration", good_cal, "-s", "dualpipe", "--pp", "2", "-m", "4"], None)
case(["compare", good_run], None)
case(["compare"], None)

# Outputs that cannot be written, and must leave nothing behind.
for cmd in (["schedule", "-s", "1f1b", "--pp", "2", "-m", "4"],
            ["simulate", "-s", "1f1b", "--pp", "2", "-m", "4", "--cost", "F=1ms,I=1ms,W=1ms"]):
    case(cmd + ["-o", FOLDER], "folder")
    case(cmd + ["-o", os.path.join(WORK, "missing", "dir", "o.txt")], "does not exist")
case(["simulate", "-s", "1f1b", "--pp", "2", "-m", "4", "--cost", "F=1ms,I=1ms,W=1ms", "--trace", path("t-ok.json"),
      "-o", os.path.join(WORK, "missing", "o.txt")], "nothing was written")
case(["simulate", "-s", "1f1b,zb-h1", "--pp", "2", "-m", "4", "--cost", "F=1ms,I=1ms,W=1ms", "--timeline",
      path("tl.json")], "one schedule")

# Trace import.
for f in (MISSING, EMPTY, GARBAGE, TRUNCATED, ARRAY, NOT_OBJECT, path("empty-dir-file.json", '{"traceEvents": 5}'),
          path("events-bad.json", '{"traceEvents": [{"ph": "X", "ts": "soon"}]}')):
    case(["import", f], None)
os.makedirs(os.path.join(WORK, "empty-folder"), exist_ok=True)
case(["import", os.path.join(WORK, "empty-folder")], None)
case(["import", path("ok-trace.json", '{"traceEvents": []}'), "--action", "(unclosed=F"], None)
case(["import", path("ok-trace2.json", '{"traceEvents": []}'), "--action", "x=Q"], None)
case(["import", path("ok-trace3.json", '{"traceEvents": []}'), "--rules", MISSING], None)

# The runtime, as threads (no mpirun): sizes, devices, schedules.
small = ["--layers", "2", "--hidden", "8", "--heads", "2", "--ffn", "8", "--seq", "4"]
run_bad = [["--threads", "0"], ["--threads", "-1"], ["--ep", "0"], ["--ep", "-2"], ["--layers", "0"],
           ["--hidden", "0"], ["--heads", "3"], ["--heads", "0"], ["--seq", "0"], ["--ffn", "-8"],
           ["--micro-batch-size", "0"], ["--hidden", "1000000"], ["--precision", "fp16"], ["--device", "tpu"],
           ["--comm", "carrier-pigeon"], ["--steps", "0"], ["--timeout", "-1"], ["--experts", "3"],
           ["--model", "tiny-moe", "--experts", "3", "--ep", "2"], ["--model", "gpt-9"], ["--model", "llama3-70b", "--experts", "4"],
           ["--experts-per-token", "0", "--model", "tiny-moe"], ["--pp", "3"], ["-m", "0"], ["--device", "cpu", "--comm", "nccl"],
           ["--timeline", FOLDER], ["--timeline", os.path.join(WORK, "missing", "r.json")]]
for bad in run_bad:
    case(["run", "--threads", "2", "--schedule", "1f1b", "-m", "4"] + small + bad, None)
case(["run", "--threads", "2"] + small, "no schedule")
case(["run", "--threads", "3", "--schedule", "dualpipe", "-m", "4"] + small, None)
case(["run", "--threads", "2", "--from-csv", MISSING] + small, None)
case(["run", "--threads", "2", "--from-csv", path("deadlock2.csv", "0F0,0B0\n1B0,1F0\n")] + small, None)

# The command line itself.
case(["frobnicate"], "unknown command 'frobnicate'")
case([], None)
case(["simulate", "--no-such-flag"], None)
case(["serve", "--port", "70000"], "port")
case(["serve", "--workers", "0"], "workers")
case(["serve", "--host", "256.0.0.1", "--port", "0"], "cannot listen")
case(["serve", "--max-sweep-points", "0"], "max-sweep-points")
case(["validate", "--max-mean-error", "-1"], None)
case(["validate", "--format", "xml"], None)
case(["schedule", "--list", "--format", "yaml"], None)

if "--list" in sys.argv:
    for args, fragment, code in cases:
        print(code, " ".join(args))
    sys.exit(0)

failures = 0
for i, (args, fragment, code) in enumerate(cases):
    outputs = [a for j, a in enumerate(args) if j > 0 and args[j - 1] in ("-o", "--output", "--trace", "--timeline")]
    before = {o: os.path.exists(o) for o in outputs}
    try:
        p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=60, errors="replace")
    except subprocess.TimeoutExpired:
        print(f"HANG  {' '.join(args)}")
        failures += 1
        continue
    said = p.stdout + p.stderr
    problems = []
    if p.returncode < 0 or p.returncode >= 128:
        problems.append(f"crashed (signal {-p.returncode if p.returncode < 0 else p.returncode - 128})")
    elif p.returncode != code:
        problems.append(f"exit {p.returncode}, expected {code}")
    for bad in ("internal error", "terminate called", "Segmentation", "Aborted", "runtime error:", "AddressSanitizer"):
        if bad in said:
            problems.append(f"says '{bad}'")
    if code == 2 and not p.stderr.strip():
        problems.append("no message on stderr")
    if fragment and fragment not in said:
        problems.append(f"message lacks '{fragment}'")
    for o in outputs:
        if not before[o] and os.path.isfile(o) and p.returncode != 0:
            problems.append(f"left {o} behind")
    leftovers = [f for f in os.listdir(WORK) if ".tmp." in f]
    if leftovers:
        problems.append(f"left temporaries {leftovers}")
    if problems:
        failures += 1
        print(f"FAIL  {' '.join(args)}\n      {'; '.join(problems)}\n      {said.strip().splitlines()[-1] if said.strip() else ''}")
print(f"bad-input tour: {len(cases)} cases, {failures} failed")
sys.exit(1 if failures else 0)
