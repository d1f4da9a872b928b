#!/usr/bin/env bash
# Patches an unpacked llama-cpp-python sdist (the directory given) for the packaged app:
#
# * every CPU backend variant is installed next to libllama.so (llama_cpp/lib). With
#   GGML_BACKEND_DL=ON + GGML_CPU_ALL_VARIANTS=ON, ggml builds one libggml-cpu-<variant>.so
#   per x86-64 level and picks the best at start (ggml_backend_load_all scores each), but
#   llama-cpp-python only installs the plain `ggml-cpu` target into its package: the
#   variants would land in the wheel's bin/ (CMAKE_INSTALL_BINDIR) instead.
# * the variant list is trimmed to the levels that matter on desktops, so that the build
#   takes about half as long (each variant compiles the whole CPU backend again):
#   x64 (any x86-64), sse42 (Nehalem, x86-64-v2), sandybridge (AVX), haswell (AVX2/FMA,
#   x86-64-v3), alderlake (AVX-VNNI without AVX-512: most Intel laptops since 2021),
#   skylakex (AVX-512), icelake (AVX-512 VBMI/VNNI; also AMD Zen 4/5). Dropped, each
#   served by the next lower one: ivybridge, piledriver -> sandybridge; cannonlake,
#   cascadelake -> skylakex; cooperlake, zen4, sapphirerapids -> icelake.
# * llama.cpp's `common` library (forced on by llama-cpp-python for mtmd) is not built:
#   the app loads neither mtmd nor common.
set -euo pipefail
src="$1"
cpu_cmake="$src/vendor/llama.cpp/ggml/src/CMakeLists.txt"
for dropped in ivybridge piledriver cannonlake cascadelake cooperlake zen4 sapphirerapids; do
  grep -q "ggml_add_cpu_backend_variant($dropped " "$cpu_cmake"
  sed -i "/ggml_add_cpu_backend_variant($dropped /d" "$cpu_cmake"
done
top="$src/CMakeLists.txt"
grep -q 'set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)' "$top"
sed -i 's/set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)/set(LLAMA_BUILD_COMMON OFF CACHE BOOL "Build llama.cpp common library" FORCE)/' "$top"
grep -q '    llama_cpp_python_install_target(ggml-cpu)$' "$top"
sed -i 's/^    llama_cpp_python_install_target(ggml-cpu)$/    llama_cpp_python_install_target(ggml-cpu)\n    foreach(variant x64 sse42 sandybridge haswell alderlake skylakex icelake)\n        llama_cpp_python_install_target(ggml-cpu-${variant})\n    endforeach()/' "$top"
