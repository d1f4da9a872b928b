#!/usr/bin/env bash
# Issue 16 on a real NVIDIA GPU, in one call of the device tool (benchmarks/README.md
# says how to call it). Run from the repository root with .gpu_bundle/ carried (made by
# scripts/prepare_gpu_bundle). Writes, under $OUT, as it goes (a run cut short still
# returns what it reached):
#   report.md     what was found, section by section, with each step's time
#   results.json  the same figures as JSON
#   env.log  build.log  checks.log  bench.log
#
# Steps: the machine (GPU, driver, nvcc, compilers, Python packages); carried wheels
# into $WORK/site (pip --no-index --target); random-weight models from the carried
# vocabulary (a fixture-sized one now, a ~2B-parameter one in the background while the
# build runs); llama-cpp-python 0.3.36's CMake project built for sm_90 only (target
# `llama`, CUDA, all cores) and its Python package set up in $WORK/site; then
#   install       what the build sees (GPU offload, the engine's probe)
#   greedy        bllossom info + generate --json, GPU vs CPU, text and logits compared
#   cpu-fallback  CUDA_VISIBLE_DEVICES="" (auto and --gpu-layers -1)
#   bench         benchmarks/inference.py on the big model at F16 and Q4_K_M: prompt and
#                 decode tokens/s, bllossom_core vs plain llama-cpp-python, fraction of
#                 the bandwidth bound
#   ladder        VRAM held by a PyTorch process: the engine's ladder, step by step
#
# Environment (all optional):
#   GPU_CHECK_DRY=1       no build, no wheels: this checkout's .venv (CPU), small models;
#                         a quick test of the script itself on a machine without a GPU
#   GPU_CHECK_STEPS="..." only these of: install greedy cpu-fallback bench ladder
#   GPU_CHECK_BUDGET=560  seconds the whole run may take; a step that would not fit in
#                         what is left is skipped (and says so)
#   GPU_CHECK_WORK=/tmp/bllossom-gpu-check   build tree, site-packages, models; reused
#                         by a rerun on the same (still warm) machine: no second build
#   GPU_CHECK_CUDA=0      build the CPU backend only (to test the build step elsewhere)
#   GPU_CHECK_FA=1        also compile the flash-attention kernels (off by default: no
#                         check uses them, and they are a fifth of the compile)
#   GPU_CHECK_BIG="4096 14336 8 32 8"        hidden, ffn, layers, heads, kv heads
#   GPU_CHECK_BANDWIDTH=4.8e12               bytes/s, for the decode bound
#   GPU_CHECK_PYTHON=python3                 the GPU machine's Python (holds PyTorch)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$(date +%s)
DRY="${GPU_CHECK_DRY:-0}"
LLAMA_CPP_VERSION="0.3.36"
BUNDLE="${GPU_CHECK_BUNDLE:-$ROOT/.gpu_bundle}"
BUDGET="${GPU_CHECK_BUDGET:-560}"
JOBS="${GPU_CHECK_JOBS:-$(nproc)}"
BANDWIDTH="${GPU_CHECK_BANDWIDTH:-4.8e12}"
STEPS="${GPU_CHECK_STEPS:-install greedy cpu-fallback bench ladder}"
CUDA="${GPU_CHECK_CUDA:-1}"

if [ "$DRY" = 1 ]; then
  renice -n 19 $$ >/dev/null 2>&1 || true # a shared machine: everything below inherits it
  WORK="${GPU_CHECK_WORK:-/tmp/bllossom-gpu-check-dry}"
  PY="${GPU_CHECK_PYTHON:-$ROOT/.venv/bin/python}"
  read -r BIG_H BIG_F BIG_L BIG_HEADS BIG_KV <<<"${GPU_CHECK_BIG:-512 1536 2 8 4}"
  BENCH_ARGS=(--repeats 1 --prompt-tokens 64 --decode-tokens 16 --threads 2 --no-turns)
else
  WORK="${GPU_CHECK_WORK:-/tmp/bllossom-gpu-check}"
  PY="${GPU_CHECK_PYTHON:-python3}"
  read -r BIG_H BIG_F BIG_L BIG_HEADS BIG_KV <<<"${GPU_CHECK_BIG:-4096 14336 8 32 8}"
  BENCH_ARGS=(--repeats 5 --prompt-tokens 512 --decode-tokens 256 --threads 4)
fi
OUT="${OUT:-$WORK/out}"
SITE="$WORK/site"
MODELS="$WORK/models"
LOGS="$WORK/logs"
mkdir -p "$OUT" "$SITE" "$MODELS" "$LOGS"
REPORT="$OUT/report.md"
export GPU_CHECK_REPORT="$REPORT" GPU_CHECK_RESULTS="$OUT/results.json" PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
if [ "$DRY" = 1 ]; then
  export PYTHONPATH="$ROOT"
else
  export PYTHONPATH="$SITE:$ROOT"
fi
: >"$REPORT"
: >"$OUT/checks.log"
: >"$OUT/build.log"

elapsed() { echo $(($(date +%s) - T0)); }
say() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }
md() { printf '%s\n' "$@" >>"$REPORT"; }
any_exists() { for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }
wants() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# step NAME MIN_SECONDS MAX_SECONDS LOG COMMAND...: runs COMMAND (output to LOG) under a
# timeout of at most MAX_SECONDS and what the budget leaves; skipped when less than
# MIN_SECONDS are left. Each step's rc and time go to the report at once.
step() {
  local name="$1" min="$2" max="$3" log="$4" left cap started rc
  shift 4
  left=$((BUDGET - $(elapsed)))
  if [ "$left" -lt "$min" ]; then
    say "SKIP $name: ${left}s left, it needs about ${min}s"
    md "" "_step **$name** skipped: ${left} s of the budget left, it needs about ${min} s_"
    return 99
  fi
  cap=$((left - 3 < max ? left - 3 : max))
  say "start $name (at most ${cap}s)"
  started=$(date +%s.%N)
  timeout -k 5 "$cap" "$@" >>"$log" 2>&1
  rc=$?
  local took
  took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  [ "$rc" = 124 ] && md "" "- **timed out after ${cap} s**"
  md "" "_step **$name**: rc $rc, ${took} s (at $(elapsed) s of ${BUDGET})_"
  say "done  $name: rc $rc, ${took}s"
  return "$rc"
}

{
  echo "# Issue 16: bllossom_core on a real GPU"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo 'unknown (no .git here)')" \
    "$([ "$DRY" = 1 ] && echo '(**DRY run: no GPU, CPU-only .venv, small models**)')"
} >>"$REPORT"

# --------------------------------------------------------------------------- machine
# nvcc: on PATH, else a usual toolkit folder, else the pip layout (nvidia/cu13/bin).
NVCC=""
for candidate in "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc \
  "$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "bin", "nvcc"))' 2>/dev/null)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then NVCC="$candidate"; break; fi
done
PYBIN="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")"
CMAKE="$(command -v cmake || echo "$PYBIN/cmake")"
NINJA="$(command -v ninja || echo "$PYBIN/ninja")"
{
  echo "== nvidia-smi"
  nvidia-smi 2>&1 | head -25
  nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1
  echo "== nvcc: ${NVCC:-none}"
  [ -n "$NVCC" ] && "$NVCC" --version 2>&1 | tail -2
  [ -n "$NVCC" ] && ls -d "$(dirname "$(dirname "$(readlink -f "$NVCC")")")"/lib* 2>&1
  echo "== compilers and tools"
  gcc --version 2>&1 | head -1
  "$CMAKE" --version 2>&1 | head -1
  echo "ninja $("$NINJA" --version 2>&1)"
  echo "ccache: $(command -v ccache || echo none)"
  echo "== python: $("$PY" -c 'import sys; print(sys.executable, sys.version)')"
  "$PY" -m pip list 2>/dev/null | grep -iE '^(numpy|jinja2|markupsafe|typing.extensions|pyyaml|tqdm|sentencepiece|protobuf|scikit-build-core|cmake|ninja|torch|requests|gguf|diskcache|platformdirs) '
  echo "== machine"
  echo "nproc $(nproc)"
  free -g 2>&1 | head -2
  df -h "$WORK" /tmp 2>&1
  uname -a
} >"$OUT/env.log" 2>&1
{
  echo
  echo "## The machine"
  echo
  echo '```'
  grep -A1 '^name,' "$OUT/env.log"
  grep -E 'release|^gcc|^cmake version|^ninja|^ccache|^== python|^nproc' "$OUT/env.log"
  echo '```'
} >>"$REPORT"
say "machine: $(grep -A1 '^name,' "$OUT/env.log" | tail -1)"

# --------------------------------------------------------------------------- wheels
if [ "$DRY" != 1 ]; then
  step wheels 5 60 "$LOGS/wheels.log" "$PY" -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target "$SITE" "$BUNDLE"/wheels/*.whl
fi

# --------------------------------------------------------------------------- models
VOCAB="$BUNDLE/vocab-llama2-spm.gguf"
TINY="$MODELS/tiny-F16.gguf"
TINY_Q="$MODELS/tiny-Q4_K_M.gguf"
BIG_TAG="h${BIG_H}-f${BIG_F}-l${BIG_L}"
BIG="$MODELS/big-$BIG_TAG-F16.gguf"
BIG_Q="$MODELS/big-$BIG_TAG-Q4_K_M.gguf"
# The fixture's shape (tests/fixtures/checkpoints.py: hidden 256, ffn 512, 2 layers,
# 4 heads, 2 KV heads) and vocabulary, with random weights.
[ -f "$TINY" ] || step tiny-model 5 60 "$OUT/checks.log" "$PY" benchmarks/gpu_check.py make-model \
  --vocab "$VOCAB" --out "$TINY" --name tiny-llama2-spm
# The big one while the build runs; quantized once llama_cpp is ready ($WORK/.llama_ready).
rm -f "$WORK/.llama_ready" "$WORK/.llama_failed"
(
  if [ ! -f "$BIG.ok" ]; then
    "$PY" benchmarks/gpu_check.py make-model --vocab "$VOCAB" --out "$BIG" --name "big-$BIG_TAG" \
      --hidden "$BIG_H" --ffn "$BIG_F" --layers "$BIG_L" --heads "$BIG_HEADS" --kv-heads "$BIG_KV" \
      --ctx 8192 --seed 7 && touch "$BIG.ok" || exit 1
  fi
  while [ ! -f "$WORK/.llama_ready" ]; do
    [ -f "$WORK/.llama_failed" ] && exit 1
    sleep 1
  done
  if [ ! -f "$BIG_Q.ok" ]; then
    "$PY" benchmarks/gpu_check.py quantize "$BIG" "$BIG_Q" --type Q4_K_M --threads "$JOBS" \
      && touch "$BIG_Q.ok"
  fi
) >"$LOGS/big-model.log" 2>&1 &
BIG_PID=$!

# --------------------------------------------------------------------------- build
# (GPU_CHECK_SRC / GPU_CHECK_BUILD_DIR: an unpacked source and its build tree elsewhere,
# for testing the build step on a machine that has built it before.)
SRC="${GPU_CHECK_SRC:-$WORK/src/llama_cpp_python-$LLAMA_CPP_VERSION}"
BUILD="${GPU_CHECK_BUILD_DIR:-$WORK/build}"
TARGET="${GPU_CHECK_TARGET:-llama}"
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAVA_BUILD=OFF
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF
)
if [ "$CUDA" = 1 ]; then
  CMAKE_FLAGS+=(-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA_ALL_QUANTS=OFF
    -DGGML_CUDA_NCCL=OFF)
  # Flash-attention kernels: the engine's default (and llama-cpp-python's flash_attn=False)
  # never runs them, and leaving their bodies out takes about a fifth off the compile.
  [ "${GPU_CHECK_FA:-0}" = 1 ] || CMAKE_FLAGS+=(-DGGML_CUDA_FA=OFF)
  if [ -n "$NVCC" ]; then
    # nvcc may be a wrapper script (as on this project's CPU machines): ask it for its TOP.
    CUDA_ROOT="$("$NVCC" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)"
    CUDA_ROOT="$(readlink -f "${CUDA_ROOT:-$(dirname "$NVCC")/..}")"
    CMAKE_FLAGS+=("-DCMAKE_CUDA_COMPILER=$NVCC" "-DCUDAToolkit_ROOT=$CUDA_ROOT")
    # cuBLAS where the toolkit folder lacks it: the image's PyTorch brings it as the
    # nvidia-cublas wheel (nvidia/cu13/include, nvidia/cu13/lib/libcublas.so.13).
    if ! any_exists "$CUDA_ROOT"/include/cublas_v2.h "$CUDA_ROOT"/targets/*/include/cublas_v2.h; then
      CUBLAS_DIR="$("$PY" -c '
import os, sys
for base in sys.path:
    for sub in ("nvidia/cu13", "nvidia/cublas", "nvidia/cu12"):
        if os.path.exists(os.path.join(base, sub, "include", "cublas_v2.h")):
            print(os.path.join(base, sub))
            raise SystemExit
' 2>/dev/null)"
      if [ -n "$CUBLAS_DIR" ]; then
        CUBLAS_LIB="$(ls "$CUBLAS_DIR"/lib/libcublas.so* | head -1)"
        CUBLASLT_LIB="$(ls "$CUBLAS_DIR"/lib/libcublasLt.so* | head -1)"
        CMAKE_FLAGS+=("-DCUDA_cublas_LIBRARY=$CUBLAS_LIB" "-DCUDA_cublasLt_LIBRARY=$CUBLASLT_LIB")
        export CPATH="$CUBLAS_DIR/include${CPATH:+:$CPATH}"
        export LD_LIBRARY_PATH="$CUBLAS_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      fi
    fi
    # The driver's libcuda (ggml's VMM pool links it) where the toolkit has no stub of it;
    # without one, build without VMM.
    if ! any_exists "$CUDA_ROOT"/lib*/stubs/libcuda.so "$CUDA_ROOT"/lib*/libcuda.so \
      "$CUDA_ROOT"/targets/*/lib/stubs/libcuda.so; then
      LIBCUDA="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 .*x86-64/ {print $NF; exit}')"
      for candidate in /usr/local/nvidia/lib64/libcuda.so.1 /usr/local/nvidia/lib/libcuda.so.1 \
        /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1; do
        [ -z "$LIBCUDA" ] && [ -e "$candidate" ] && LIBCUDA="$candidate"
      done
      if [ -n "$LIBCUDA" ]; then
        CMAKE_FLAGS+=("-DCUDA_cuda_driver_LIBRARY=$LIBCUDA")
      else
        CMAKE_FLAGS+=(-DGGML_CUDA_NO_VMM=ON)
      fi
    fi
  fi
fi
[ -x "$NINJA" ] && CMAKE_FLAGS+=(-G Ninja "-DCMAKE_MAKE_PROGRAM=$NINJA")
if [ -n "${CUDA_ROOT:-}" ]; then
  export PATH="$(dirname "$NVCC"):$PATH"
  export LD_LIBRARY_PATH="$CUDA_ROOT/lib64:$CUDA_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
build_stamp="$(
  cat "$BUNDLE"/llama-cpp-python-*-cuda-src.tar.xz 2>/dev/null | sha256sum | cut -c1-16
)-$(echo "${CMAKE_FLAGS[*]}" | sha256sum | cut -c1-16)"

build_llama() {
  set -e
  if [ ! -d "$SRC" ]; then
    mkdir -p "$WORK/src"
    tar -xJf "$BUNDLE"/llama-cpp-python-"$LLAMA_CPP_VERSION"-cuda-src.tar.xz -C "$WORK/src"
  fi
  echo "cmake ${CMAKE_FLAGS[*]}"
  if ! "$CMAKE" -S "$SRC" -B "$BUILD" "${CMAKE_FLAGS[@]}"; then
    # Once more without CUDA's virtual memory management, which is what needs the
    # driver's libcuda.so at link time (the likeliest thing for CMake not to find).
    [ "$CUDA" = 1 ] || return 1
    echo "CONFIGURE FAILED; again with -DGGML_CUDA_NO_VMM=ON"
    rm -rf "$BUILD"
    CMAKE_FLAGS+=(-DGGML_CUDA_NO_VMM=ON)
    "$CMAKE" -S "$SRC" -B "$BUILD" "${CMAKE_FLAGS[@]}"
  fi
  local t=$(date +%s)
  "$CMAKE" --build "$BUILD" --target "$TARGET" -j "$JOBS"
  echo "compile: $(($(date +%s) - t)) s"
  rm -rf "$SITE/llama_cpp"
  cp -r "$SRC/llama_cpp" "$SITE/llama_cpp"
  mkdir -p "$SITE/llama_cpp/lib"
  find "$BUILD" \( -name 'lib*.so' -o -name 'lib*.so.*' \) \( -type f -o -type l \) \
    -exec cp -a {} "$SITE/llama_cpp/lib/" \;
  ls -la "$SITE/llama_cpp/lib"
  for lib in "$SITE"/llama_cpp/lib/libggml-cuda.so "$SITE"/llama_cpp/lib/libllama.so; do
    [ -e "$lib" ] && { echo "== ldd $lib"; ldd "$lib"; }
  done
  [ "$CUDA" != 1 ] || [ -e "$SITE/llama_cpp/lib/libggml-cuda.so" ] || {
    echo "no libggml-cuda.so was built"
    return 1
  }
  echo "$build_stamp" >"$SITE/llama_cpp/.build-stamp"
}

# While the build runs, its progress every 30 s (the run's output shows it).
ticker() { while sleep 30; do say "  build: $(tail -c 300 "$OUT/build.log" | tr '\r' '\n' | grep -a '^\[' | tail -1)"; done; }

if [ "$DRY" = 1 ]; then
  md "" "_build skipped (dry run): $("$PY" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__, "from", llama_cpp.__file__)')_"
  touch "$WORK/.llama_ready"
elif [ "$(cat "$SITE/llama_cpp/.build-stamp" 2>/dev/null)" = "$build_stamp" ]; then
  md "" "_build: reused from an earlier run on this machine ($SITE/llama_cpp)_"
  say "build reused"
  touch "$WORK/.llama_ready"
else
  ticker &
  TICKER=$!
  step build 120 480 "$OUT/build.log" bash -c "$(declare -p SRC BUILD SITE WORK BUNDLE CMAKE CMAKE_FLAGS \
    LLAMA_CPP_VERSION JOBS CUDA TARGET build_stamp); $(declare -f build_llama); build_llama"
  rc=$?
  kill "$TICKER" 2>/dev/null
  md "" "- cmake flags: \`$(grep -a '^cmake ' "$OUT/build.log" | tail -1 | cut -c7-)\`" \
    "- CUDA: toolkit \`${CUDA_ROOT:-none}\`, cuBLAS from \`${CUBLAS_DIR:-the toolkit}\`, driver" \
    "  library \`${LIBCUDA:-the toolkit stub, or none}\`" \
    "$(grep -a 'CONFIGURE FAILED' "$OUT/build.log")"
  if [ "$rc" = 0 ]; then
    touch "$WORK/.llama_ready"
    md "" "- build: $(grep -a '^compile:' "$OUT/build.log" | tail -1); libraries:" \
      "$(ls "$SITE/llama_cpp/lib" | tr '\n' ' ')"
  else
    touch "$WORK/.llama_failed"
    md "" "**The build failed (rc $rc)**; the end of build.log:" '```' \
      "$(grep -aiE 'error|fatal|failed' "$OUT/build.log" | tail -15)" '```'
  fi
fi

# --------------------------------------------------------------------------- checks
if wants install; then
  step install 10 60 "$OUT/checks.log" "$PY" benchmarks/gpu_check.py install \
    $([ "$DRY" = 1 ] || [ "$CUDA" != 1 ] && echo --allow-cpu)
fi
if [ ! -f "$TINY_Q" ] && [ -f "$WORK/.llama_ready" ]; then
  step tiny-quantize 10 60 "$OUT/checks.log" "$PY" benchmarks/gpu_check.py quantize "$TINY" \
    "$TINY_Q" --type Q4_K_M --threads "$JOBS"
fi
if wants greedy; then
  tiny_models=(--model "$TINY")
  [ -f "$TINY_Q" ] && tiny_models+=(--model "$TINY_Q")
  step greedy 30 150 "$OUT/checks.log" "$PY" benchmarks/gpu_check.py greedy "${tiny_models[@]}"
fi
if wants cpu-fallback; then
  step cpu-fallback 15 90 "$OUT/checks.log" "$PY" benchmarks/gpu_check.py cpu-fallback --model "$TINY"
fi

# The big models: wait for the background job (generation, then quantization).
if wants bench || wants ladder; then
  say "waiting for the big models"
  while kill -0 "$BIG_PID" 2>/dev/null && [ "$(elapsed)" -lt $((BUDGET - 60)) ]; do sleep 1; done
  cat "$LOGS/big-model.log" >>"$OUT/checks.log"
  md "" "## The big random-weight model" "" '```' \
    "$(grep -aE '\.gguf: |quantize_impl|Error|error' "$LOGS/big-model.log")" '```'
fi
if wants bench; then
  bench_models=()
  [ -f "$BIG.ok" ] && bench_models+=(--model "$BIG")
  [ -f "$BIG_Q.ok" ] && bench_models+=(--model "$BIG_Q")
  if [ "${#bench_models[@]}" -gt 0 ]; then
    md "" "## Benchmark: bllossom_core vs plain llama-cpp-python (same build, same layers)" ""
    step bench 60 240 "$OUT/bench.log" "$PY" -m benchmarks.inference "${bench_models[@]}" \
      "${BENCH_ARGS[@]}" --bandwidth "$BANDWIDTH" --no-default-threads
    { echo '```'; grep -av '^\s*$' "$OUT/bench.log" | grep -av 'Traceback' | tail -40; echo '```'; } >>"$REPORT"
  else
    md "" "_bench skipped: no big model (see the section above)_"
  fi
fi
if wants ladder; then
  if [ -f "$BIG.ok" ]; then
    step ladder 45 200 "$OUT/checks.log" "$PY" benchmarks/gpu_check.py ladder --model "$BIG"
  else
    md "" "_ladder skipped: no big model_"
  fi
fi

kill "$BIG_PID" 2>/dev/null
md "" "_finished at $(elapsed) s_"
say "finished; the report:"
echo
cat "$REPORT"
