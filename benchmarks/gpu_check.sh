#!/usr/bin/env bash
# The CUDA check (issue #15 §7), in two steps; docs/estimator.md ("Checking on a CUDA machine") says more.
#
#   bash benchmarks/gpu_check.sh prepare   # here: .gpu_check/ = trimmed llama.cpp source + cp312 wheels (≤ 64 MiB)
#   bash benchmarks/gpu_check.sh run       # on the CUDA machine (no network; nvcc, CMake, ninja, Python 3.12):
#                                          # build libllama + llama-server, write GGUFs, load, start the server
#                                          # at 1 and 4 slots, compare → $OUT/gpu_check.{json,md}
#   bash benchmarks/gpu_check.sh cpu       # here: the same run on the CPU build, a tiny model, no NVML, and
#                                          # set-up's CPU llama-server (LOCALCREW_LLAMA_SERVER, else the venv's)
#
# `run` keeps to a 9-minute budget (--budget-s), build included; it prints each phase's time.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  prepare)
    exec "${PYTHON:-.venv/bin/python}" -m benchmarks.gpu_check.prepare "$@"
    ;;
  cpu)
    exec "${PYTHON:-.venv/bin/python}" -m benchmarks.gpu_check.run --cpu "$@"
    ;;
  run)
    bundle=.gpu_check
    if [ ! -f "$bundle/manifest.json" ]; then
      echo "gpu_check: $bundle/manifest.json missing — fix: run 'bash benchmarks/gpu_check.sh prepare' first" >&2
      exit 2
    fi
    py=""
    for cand in ${PYTHON:-python3.12 python3}; do  # the first that runs and is 3.12 (the wheels are cp312)
      if "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then py=$cand; break; fi
    done
    if [ -z "$py" ]; then
      echo "gpu_check: no Python 3.12 (the bundled wheels are cp312) — fix: PYTHON=/path/to/python3.12" >&2
      exit 2
    fi
    if [ ! -f "$bundle/site/.unpacked" ]; then
      rm -rf "$bundle/site" && mkdir -p "$bundle/site"
      tar -xzf "$bundle/site.tar.gz" -C "$bundle/site" && touch "$bundle/site/.unpacked"
    fi
    export PYTHONPATH="$PWD/$bundle/site:$PWD"
    exec "$py" -m benchmarks.gpu_check.run --started-ago-s "$(( $(date +%s) - started ))" "$@"
    ;;
  *)
    echo "usage: bash benchmarks/gpu_check.sh prepare|run|cpu [options]" >&2
    exit 2
    ;;
esac
