#!/bin/sh
# Correctness of the runtime over MPI: RANKS processes run SCHEDULE for real and compare with a plain
# single-process step (losses bit for bit, gradients to 1e-12). SCHEDULE "all" runs every schedule of the
# registry (`pipesim schedule --list`), so a new schedule is checked the day it is added.
# Usage: run_check.sh PIPESIM MPIEXEC RANKS SCHEDULE M [args...]
set -u
bin=$1; mpiexec=$2; ranks=$3; schedule=$4; m=$5; shift 5
if [ "$schedule" = all ]; then
  schedules=$("$bin" schedule --list | cut -d' ' -f1)
  [ -n "$schedules" ] || { echo "FAIL: pipesim schedule --list printed no schedule"; exit 1; }
else
  schedules=$schedule
fi
for s in $schedules; do
  out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}" LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")/.." && pwd)/lsan-openmpi.supp" \
    timeout 120 "$mpiexec" -n "$ranks" --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo \
    --mca oob_tcp_if_include lo "$bin" run --schedule "$s" --microbatches "$m" --steps 2 --check \
    --layers 8 --hidden 16 --heads 2 --ffn 32 --seq 8 "$@" 2>&1)
  code=$?
  echo "== $s on $ranks ranks"
  echo "$out"
  [ "$code" -eq 0 ] || { echo "FAIL: $s: exit $code"; exit 1; }
  echo "$out" | grep -q "check: .*: OK" || { echo "FAIL: $s: no passing check line"; exit 1; }
done
