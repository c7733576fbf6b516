# Shared by the CLI test scripts: a scratch folder, failure counting, JSON checks, and
# expect CODE PATTERN ARGS...: runs $bin ARGS, checks the exit code and that stdout+stderr match PATTERN.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect() {
  code=$1; pattern=$2; shift 2
  "$bin" "$@" >"$work/out" 2>"$work/err"
  got=$?
  [ "$got" -eq "$code" ] || fail "pipesim $* exited $got, expected $code: $(head -c 400 "$work/err")"
  cat "$work/out" "$work/err" | grep -q -- "$pattern" || fail "pipesim $*: output lacks '$pattern': $(head -c 600 "$work/out" "$work/err")"
}

# run_json NAME ARGS...: pipesim ARGS must exit 0; its standard output is kept as $work/NAME.json.
run_json() {
  name=$1; shift
  "$bin" "$@" >"$work/$name.json" 2>"$work/err" || fail "pipesim $* exited $?: $(head -c 400 "$work/err")"
}
# check NAME PYTHON: runs PYTHON with j = the JSON of $work/NAME.json (other files under `work`);
# eq(got, want, what), near(got, want, what) and ok(condition, what) stop at the first mismatch, which
# fails the test naming it. A script may define more helpers in $checker_extra (Python, unindented).
checker_extra=''
check() {
  python3 -c "
import json, math, os, sys, textwrap
work = os.path.dirname(sys.argv[1])
j = json.load(open(sys.argv[1]))
def eq(got, want, what):
    if got != want: sys.exit(f'{what}: got {got!r}, expected {want!r}')
def near(got, want, what, rel=1e-9):
    if not math.isclose(got, want, rel_tol=rel, abs_tol=1e-9): sys.exit(f'{what}: got {got!r}, expected {want!r}')
def ok(condition, what):
    if not condition: sys.exit(what)
$checker_extra
exec(textwrap.dedent(sys.argv[2]))
" "$work/$1.json" "$2" 2>"$work/check.err" || fail "$1: $(tail -c 600 "$work/check.err")"
}
