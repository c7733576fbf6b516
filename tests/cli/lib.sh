# Shared by the CLI test scripts: a scratch folder, failure counting, and
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
