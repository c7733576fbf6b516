#!/bin/sh
# One correctness case of the runtime: RANKS MPI processes run SCHEDULE for real and compare with a plain
# single-process step (losses bit for bit, gradients to 1e-12). Usage: run_check.sh PIPESIM MPIEXEC RANKS SCHEDULE M [args...]
set -u
bin=$1; mpiexec=$2; ranks=$3; schedule=$4; m=$5; shift 5
out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
  timeout 120 "$mpiexec" -n "$ranks" --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo \
  --mca oob_tcp_if_include lo "$bin" run --schedule "$schedule" --microbatches "$m" --steps 2 --check \
  --layers 8 --hidden 16 --heads 2 --ffn 32 --seq 8 "$@" 2>&1)
code=$?
echo "$out"
[ "$code" -eq 0 ] || { echo "FAIL: exit $code"; exit 1; }
echo "$out" | grep -q "check: .*: OK" || { echo "FAIL: no passing check line"; exit 1; }
