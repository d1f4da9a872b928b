# Sourced by scripts/package with BLLOSSOM_CUDA=1, after the CPU .deb is built: the GPU
# add-on dist/bllossom-desktop-cuda_<version>_amd64.deb.
#
# It holds llama.cpp's CUDA backend (libggml-cuda.so), built from the same patched
# sources as the bundle's llama-cpp-python, and the CUDA runtime and cuBLAS it links to.
# Installed beside the CPU backends in the bundle's llama_cpp/lib, ggml's backend loader
# (the launcher's ggml_backend_load_all_from_path) finds it at start. Its NEEDED
# libcuda.so.1 is the NVIDIA driver's and is never shipped: without a driver the backend
# does not load (silently, in a release build of ggml) and the app runs on the CPU as it
# does without this package. The runtime and cuBLAS sit in llama_cpp/lib/cuda, found
# through the backend's RUNPATH; nothing else in the bundle sees them.
#
# Uses scripts/package's say, low, step_done, unpack_llama_source, $cache, $build,
# $bundle, $version, $PYTHON and $LLAMA_CPP_VERSION.

# Turing (RTX 20, T4) to Blackwell (RTX 50, B200) as machine code, and the newest as PTX
# that the driver compiles for GPUs after it. (CUDA 13 has dropped Maxwell to Volta.)
cuda_archs="${BLLOSSOM_CUDA_ARCHS:-75-real;80-real;86-real;89-real;90-real;100-real;120-real;120-virtual}"

cuda_fail() {
  echo "scripts/package (BLLOSSOM_CUDA=1): $*" >&2
  exit 1
}
# The first file found (-H: the toolkit's lib64 and targets/*/lib are often symlinks).
first_file() { find -H "$@" -print -quit 2>/dev/null || true; }

nvcc=""
for candidate in "${CUDA_HOME:-/nonexistent}/bin/nvcc" "$(command -v nvcc || true)" \
  /usr/local/cuda/bin/nvcc; do
  if [ -z "$nvcc" ] && [ -x "$candidate" ]; then nvcc="$candidate"; fi
done
[ -n "$nvcc" ] || cuda_fail "no nvcc: install the CUDA toolkit (nvcc in \$CUDA_HOME/bin, on PATH or in /usr/local/cuda/bin)"
# The toolkit's root as nvcc itself sees it (the nvcc on PATH may be a wrapper script).
cuda_root="$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p')"
cuda_root="$(readlink -f "${cuda_root:-$(dirname "$nvcc")/..}")"
cuda_release="$("$nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
cuda_major="${cuda_release%%.*}"
# The package's text, its driver requirement (580) and the app's advice are CUDA 13's.
[ "$cuda_major" = 13 ] || cuda_fail "the add-on is built with CUDA 13 (this nvcc is CUDA $cuda_release)"
cuda_libs=("$cuda_root/lib64" "$cuda_root/targets/x86_64-linux/lib")
cudart="$(first_file "${cuda_libs[@]}" -name "libcudart.so.$cuda_major")"
[ -n "$cudart" ] || cuda_fail "no libcudart.so.$cuda_major in the CUDA toolkit at $cuda_root"
say "CUDA $cuda_release at $cuda_root; GPU architectures $cuda_archs"

# cuBLAS: the toolkit's own, else NVIDIA's wheel for the same CUDA release (a toolkit
# installed from NVIDIA's pip wheels may have nvcc and the runtime only).
cublas_header="$(first_file "$cuda_root/include" "$cuda_root/targets/x86_64-linux/include" -name cublas_v2.h)"
cublas="$(first_file "${cuda_libs[@]}" -name "libcublas.so.$cuda_major")"
cuda_licence="$(first_file "$cuda_root" -maxdepth 1 -name EULA.txt)"
if [ -z "$cublas_header" ] || [ -z "$cublas" ]; then
  wheel="nvidia-cublas"
  cublas_dir="$cache/cublas-$cuda_release"
  if [ ! -d "$cublas_dir" ]; then
    say "downloading cuBLAS for CUDA $cuda_release ($wheel==$cuda_release.*)"
    rm -rf "$cublas_dir.partial"
    mkdir -p "$cublas_dir.partial"
    "$PYTHON" -m pip --disable-pip-version-check download -q --no-deps \
      -d "$cublas_dir.partial" "$wheel==$cuda_release.*"
    "$PYTHON" -m zipfile -e "$cublas_dir.partial"/*.whl "$cublas_dir.partial"
    rm "$cublas_dir.partial"/*.whl
    mv "$cublas_dir.partial" "$cublas_dir"
  fi
  cublas_header="$(first_file "$cublas_dir" -name cublas_v2.h)"
  cublas="$(first_file "$cublas_dir" -name "libcublas.so.$cuda_major")"
  cuda_licence="$(first_file "$cublas_dir" -path '*licenses*' -name 'License.txt')"
fi
cublas_lt="$(dirname "$cublas")/libcublasLt.so.$cuda_major"
[ -f "$cublas_lt" ] && [ -n "$cublas_header" ] || cuda_fail "cuBLAS $cuda_release was not found or is incomplete"
[ -n "$cuda_licence" ] || cuda_fail "no NVIDIA licence text (EULA.txt) beside the CUDA libraries"

# Only to link against: at run time the driver's own libcuda.so.1 is loaded. (It
# defines none of the cu* functions, so the link runs with --no-as-needed: else the
# linker drops it, and with it the backend's NEEDED libcuda.so.1.)
driver_stub="$(first_file "${cuda_libs[@]/%//stubs}" -name libcuda.so)"
if [ -z "$driver_stub" ]; then
  driver_stub="$build/cuda-stub/libcuda.so"
  mkdir -p "$(dirname "$driver_stub")"
  echo 'void bllossom_link_stub(void) {}' |
    gcc -shared -x c - -o "$driver_stub" -Wl,-soname,libcuda.so.1
fi

cuda_key="$( (echo "$LLAMA_CPP_VERSION $cuda_release $cuda_archs" &&
  cat packaging/llama-cpp-python.patch.sh) | sha256sum | cut -c1-12)"
backend_dir="$cache/ggml-cuda-$LLAMA_CPP_VERSION-$cuda_key"
if [ ! -f "$backend_dir/libggml-cuda.so" ]; then
  say "building llama.cpp's CUDA backend (long, once per architecture list)"
  # Kept until the backend is built: a build that was stopped resumes where it was.
  work="$backend_dir.build"
  src="$work/llama_cpp_python-$LLAMA_CPP_VERSION"
  objects="$work/objects"
  [ -d "$src" ] || unpack_llama_source "$work"
  include="-I$(dirname "$cublas_header")"
  low cmake -S "$src/vendor/llama.cpp" -B "$objects" \
    -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU=OFF \
    -DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$cuda_archs" "-DCMAKE_CUDA_COMPILER=$nvcc" \
    "-DCUDAToolkit_ROOT=$cuda_root" "-DCUDA_cublas_LIBRARY=$cublas" \
    "-DCUDA_cublasLt_LIBRARY=$cublas_lt" "-DCUDA_cuda_driver_LIBRARY=$driver_stub" \
    "-DCMAKE_CUDA_FLAGS=$include" "-DCMAKE_CXX_FLAGS=$include" \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF \
    "-DCMAKE_MODULE_LINKER_FLAGS=-Wl,--no-as-needed" >/dev/null
  low cmake --build "$objects" --target ggml-cuda -j "$(nproc)"
  rm -rf "$backend_dir.partial"
  mkdir -p "$backend_dir.partial"
  cp "$(first_file "$objects" -name libggml-cuda.so)" "$backend_dir.partial/"
  mv "$backend_dir.partial" "$backend_dir"
  rm -rf "$work"
fi
objdump -p "$backend_dir/libggml-cuda.so" | grep -q 'NEEDED *libcuda\.so\.1$' ||
  cuda_fail "$backend_dir/libggml-cuda.so does not link to the driver (libcuda.so.1)"
step_done cuda-backend

lib_dir="opt/bllossom-desktop/_internal/llama_cpp/lib"
cuda_stage="$build/deb-cuda"
rm -rf "$cuda_stage"
mkdir -p "$cuda_stage/DEBIAN" "$cuda_stage/$lib_dir/cuda" \
  "$cuda_stage/usr/share/doc/bllossom-desktop-cuda"
cp "$backend_dir/libggml-cuda.so" "$cuda_stage/$lib_dir/"
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader
patchelf --set-rpath '$ORIGIN:$ORIGIN/cuda' "$cuda_stage/$lib_dir/libggml-cuda.so"
cp "$cudart" "$cublas" "$cublas_lt" "$cuda_stage/$lib_dir/cuda/"

# Every library these link to is shipped here, is in the CPU bundle (ggml's base), is
# the driver's libcuda.so.1, or comes from a package the CPU .deb already depends on.
cpu_libs="$(find "$bundle" \( -type f -o -type l \) -name 'lib*.so*' -printf '%f\n' | sort -u)"
own_libs="$(find "$cuda_stage" -type f -name 'lib*.so*' -printf '%f\n' | sort -u)"
system_libs="$(printf '%s\n' libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 \
  ld-linux-x86-64.so.2 libstdc++.so.6 libgcc_s.so.1 libcuda.so.1)"
needed="$(find "$cuda_stage" -type f -name '*.so*' -print0 | xargs -0 objdump -p |
  sed -n 's/^ *NEEDED *//p' | sort -u)"
unexplained="$(grep -vxF -e "$cpu_libs" -e "$own_libs" -e "$system_libs" <<<"$needed" || true)"
[ -z "$unexplained" ] || cuda_fail "the CUDA backend needs libraries nothing provides: $unexplained"
cuda_glibc="$(find "$cuda_stage" -type f -name '*.so*' -print0 | xargs -0 objdump -T 2>/dev/null |
  grep -o 'GLIBC_[0-9][0-9.]*' | sort -u -V | tail -1)"
cuda_glibc="${cuda_glibc#GLIBC_}"

cp "$cuda_licence" "$cuda_stage/usr/share/doc/bllossom-desktop-cuda/NVIDIA-LICENSE.txt"
install -m644 packaging/debian/copyright-cuda "$cuda_stage/usr/share/doc/bllossom-desktop-cuda/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@GLIBC@/$cuda_glibc/" -e "s/@CUDA@/$cuda_release/" \
  -e "s/@INSTALLED_SIZE@/$(du -sk --apparent-size "$cuda_stage" | cut -f1)/" \
  packaging/debian/control-cuda.in >"$cuda_stage/DEBIAN/control"
chmod -R u+rwX,go+rX,go-w "$cuda_stage"
cuda_deb="dist/bllossom-desktop-cuda_${version}_amd64.deb"
low dpkg-deb --root-owner-group -Zxz --build "$cuda_stage" "$cuda_deb" >/dev/null
step_done cuda-deb
cuda_installed_mb=$(($(du -sk --apparent-size "$cuda_stage/opt" | cut -f1) / 1024))
cuda_deb_mb=$(($(stat -c %s "$cuda_deb") / 1024 / 1024))
say "built $cuda_deb: download $cuda_deb_mb MB, installed $cuda_installed_mb MB (CUDA $cuda_release; $cuda_archs)"
printf 'cuda_download_mb\t%s\ncuda_installed_mb\t%s\n' "$cuda_deb_mb" "$cuda_installed_mb" \
  >>"$build/sizes.tsv"
