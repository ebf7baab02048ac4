#!/usr/bin/env bash
# The two set-up commands of the README, on a fresh machine with only Python 3.11 and pip:
#   bash scripts/setup.sh run    set up, then `crewai run` on the example task (embedded model, CPU)
#   bash scripts/setup.sh test   set up, then ruff, mypy and the whole pytest suite (slow tests included)
#   bash scripts/setup.sh doctor set up, then check the llama.cpp build against this machine (rebuilt once if
#                                it cannot run here)
# Extra arguments after `test` go to pytest (e.g. `bash scripts/setup.sh test -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in run|test|sync|doctor) shift ;; *) echo "usage: bash scripts/setup.sh run|test|doctor [pytest args]" >&2; exit 2 ;; esac

# Nothing phones home, in this script and in everything it starts.
export CREWAI_DISABLE_TELEMETRY=true CREWAI_DISABLE_TRACKING=true CREWAI_TRACING_ENABLED=false
export OTEL_SDK_DISABLED=true LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv with pip (once)"
  python3 -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi

# llama-cpp-python compiles from source: build only the library (no tools, examples, tests, server
# binary or multimodal). ~5 min on 2 cores the first time; uv caches the wheel.
# Portable, not native: -DGGML_NATIVE=ON compiles whatever the build machine's CPU advertises (AVX-512,
# AMX), and the result crashes where that is not runnable: AMX faults in some VMs that advertise it, and a
# venv or wheel cache moved to another CPU dies on SIGILL. The AVX2/FMA/F16C baseline runs on every x86-64
# CPU since 2013 (Haswell, Zen); docs/portable-build.md has the measured cost against native.
trim_args="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF"
portable_cpu_args="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
user_cmake_args=${CMAKE_ARGS:+yes}
# The safe rebuild after a failed self-check: your own CMAKE_ARGS (CUDA, say) with the portable CPU flags after
# them (a later -D wins), or the default trimmed portable build.
safe_cmake_args="${CMAKE_ARGS:-$trim_args} $portable_cpu_args"
export CMAKE_ARGS="${CMAKE_ARGS:-$trim_args $portable_cpu_args}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
start=$(date +%s)
# Offline first: uv then takes the sdist and the wheel it built from its cache even when the registry's
# cache headers have expired (measured: every online sync here re-fetched the sdist under a new revision and
# compiled llama-cpp-python again, ~5 min). A machine without that cache falls back to the registry.
# Your own CMAKE_ARGS (a CUDA build) must rebuild: uv's cache does not key on them.
if [ -n "$user_cmake_args" ]; then
  uv sync --frozen --python 3.11 --reinstall-package llama-cpp-python
else
  uv sync --frozen --python 3.11 --offline 2>/dev/null || uv sync --frozen --python 3.11
fi
echo "setup: environment ready in $(( $(date +%s) - start )) s"

# Check what was built: load the embedded model in a child process and generate a few tokens (~5 s). A build
# that dies (SIGILL, or AMX faulting in a VM) or that was compiled natively (a wheel uv cached from an older
# set-up; it would crash on the next machine) is rebuilt once with the portable flags, then checked again.
# Exit codes of the check: 0 runs here, 3 the build is the problem, 2 something else (the line says what).
expect=${user_cmake_args:+--custom-build}
self_check() { uv run --frozen --no-sync plan-gpus doctor --self-check $expect; }
set +e; self_check; rc=$?; set -e
if [ "$rc" -eq 3 ]; then
  echo "setup: rebuilding llama-cpp-python once with the portable flags (~5 min on 2 cores)" >&2
  CMAKE_ARGS="$safe_cmake_args" uv sync --frozen --python 3.11 --reinstall-package llama-cpp-python
  expect=""
  set +e; self_check; rc=$?; set -e
fi
if [ "$rc" -ne 0 ]; then
  echo "setup: llama.cpp cannot run on this machine as built; \`bash scripts/setup.sh doctor\` shows why" >&2
  exit 2
fi

# llama.cpp's own server (parallel slots, continuous batching) from the same llama.cpp source, static, cached
# by version and flags in ~/.cache/localcrew/llama-server (~5 min on 2 cores the first time, seconds after).
# Without it the crew serves with llama-cpp-python's server (one request at a time): said, not fatal.
set +e
LOCALCREW_USER_CMAKE_ARGS="${user_cmake_args:+$CMAKE_ARGS}" LOCALCREW_PORTABLE_CMAKE_ARGS="$portable_cpu_args" \
  uv run --frozen --no-sync python -m crew.models.server_binary "$(uv cache dir 2>/dev/null)"
rc=$?; set -e
if [ "$rc" -ne 0 ]; then
  echo "setup: no llama-server; the crew serves with llama-cpp-python's server (one request at a time)" >&2
fi

case "$mode" in
  sync) ;;
  doctor)
    uv run --frozen --no-sync plan-gpus doctor "$@"
    ;;
  run)
    uv run --frozen crewai run
    ;;
  test)
    uv run --frozen ruff check crew tests benchmarks
    uv run --frozen mypy --strict crew/planner/vram.py crew/models/footprint.py crew/planner/solver.py \
      crew/planner/plan.py crew/answers/codeblocks.py crew/sandbox/*.py \
      crew/sandbox/inside/*.py crew/config/*.py crew/run/state.py crew/run/ledger.py crew/run/steps.py crew/journal/events.py crew/run/handlers.py crew/run/attempts.py crew/run/second_opinion.py \
      crew/serving/spec.py crew/errors.py crew/planner/search.py crew/planner/problem.py crew/planner/suggest.py \
      crew/monitor/recorded.py crew/monitor/replay.py crew/answers/examples.py crew/answers/prose_sessions.py crew/answers/answers.py \
      crew/answers/feedback.py crew/models/embedded.py crew/answers/prose.py crew/units.py \
      crew/hardware/types.py crew/models/llamacpp.py benchmarks/greedy_baseline.py \
      crew/models/download.py crew/models/sources.py crew/hardware/backend.py crew/fleet/*.py \
      crew/serving/remote.py crew/serving/signals.py crew/hardware/crash.py crew/hardware/cpu.py \
      crew/models/build_check.py crew/cli/doctor.py crew/journal/records.py crew/journal/log.py \
      crew/models/server_binary.py crew/run/overlap.py crew/run/verdict.py crew/run/assumed.py crew/answers/assumed.py crew/run/consensus.py \
      crew/answers/sessions.py crew/answers/task.py crew/answers/contradictions.py crew/run/workflow.py \
      crew/answers/by_method.py crew/run/by_method.py crew/run/crew.py crew/run/drafter.py \
      crew/answers/runaway.py crew/answers/docstrings.py crew/answers/complete.py crew/serving/llm.py benchmarks/bench_runaway.py benchmarks/bench_ngram.py benchmarks/verdict_replay.py \
      crew/answers/probes.py
    set +e
    uv run --frozen pytest "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then
      echo "setup: pytest collected no tests — that is a failure here" >&2
      exit 1
    fi
    exit "$rc"
    ;;
esac
