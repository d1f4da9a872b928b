"""The installable package (scripts/package): the .deb on a clean Debian 12 and a clean
Ubuntu 22.04 (the oldest it supports), and the bundle's CPU backend choice on old and new
x86-64 CPUs (qemu-user).

Opt-in, as they take long: they run only with ``BLLOSSOM_PACKAGE_TESTS=1`` and alone:

    BLLOSSOM_PACKAGE_TESTS=1 .venv/bin/pytest -m package tests/e2e/test_package.py

``BLLOSSOM_PACKAGE_DEB=dist/bllossom-desktop_X_amd64.deb`` tests that file instead of
building one with scripts/package. The clean roots (debootstrap, then ``apt-get update``)
are cached in ``~/.cache/bllossom-package/{bookworm,jammy}-minbase``; each run works on
a copy. Needs root (chroot, mounts), debootstrap, qemu-user, Xvfb and
xdotool. How long each step took is printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.checkpoints import CheckpointSpec, checkpoint
from tests.fixtures.gguf_models import fixture_gguf
from tests.fixtures.real_models import smollm2_gguf
from tests.fixtures.xvfb import wait_for, xvfb

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("BLLOSSOM_PACKAGE_TESTS") == "1"

pytestmark = [
    pytest.mark.package,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not ENABLED,
        reason="package tests are opt-in (long): set BLLOSSOM_PACKAGE_TESTS=1",
    ),
]

CACHE = Path(
    os.environ.get("BLLOSSOM_PACKAGE_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bllossom-package"
)
MIRROR = os.environ.get("BLLOSSOM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
LOW = ["nice", "-n", "19", "ionice", "-c3"]
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
PROMPT = "Tell me about Seoul. 서울에 대해 알려줘."
GENERATE = ["--prompt", PROMPT, "--temperature", "0", "--json", "--max-tokens", "16",
            "--context-size", "256", "--threads", "1"]  # fmt: skip

TIMINGS: list[tuple[str, float]] = []


@contextmanager
def timed(step: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append((step, time.monotonic() - start))
        print(f"[package] {step}: {time.monotonic() - start:.1f} s", file=sys.stderr)


@pytest.fixture(scope="session", autouse=True)
def report_timings(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not TIMINGS:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_sep("-", "package test steps")
        for step, seconds in TIMINGS:
            reporter.write_line(f"{seconds:8.1f} s  {step}")


def run(command: list[str], timeout: float = 600, **kwargs: object) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@pytest.fixture(scope="session")
def deb() -> Path:
    given = os.environ.get("BLLOSSOM_PACKAGE_DEB")
    if given:
        return Path(given).resolve()
    with timed("scripts/package (bundle and .deb)"):
        run([str(ROOT / "scripts" / "package")], timeout=4 * 3600, cwd=ROOT)
    found = sorted((ROOT / "dist").glob("bllossom-desktop_*_amd64.deb"))
    assert found, "scripts/package made no .deb"
    return found[-1]


@pytest.fixture(scope="session")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb's files, unpacked as they would be installed (``dpkg-deb -x``)."""
    target = tmp_path_factory.mktemp("deb-files")
    run(["dpkg-deb", "-x", str(deb), str(target)])
    return target


@pytest.fixture(scope="session")
def model() -> Path:
    return fixture_gguf("llama2-spm-ko")


def test_the_bundle_carries_every_licence_text(unpacked: Path) -> None:
    licences = unpacked / "opt" / "bllossom-desktop" / "licenses"
    index = (licences / "README.txt").read_text(encoding="utf-8")
    for component in ("PySide6_Essentials", "llama_cpp_python", "llama.cpp", "CPython", "numpy"):
        assert component in index, component
    folders = [p for p in licences.iterdir() if p.is_dir()]
    assert all(any(folder.iterdir()) for folder in folders), "a component without its text"
    qt = next(licences.glob("pyside6-essentials-*"))
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (qt / "LICENSE-LGPL-3").read_text()
    assert "The ggml authors" in (licences / "llama.cpp" / "LICENSE").read_text()


# --------------------------------------------------------------------------- qemu-user


def generate_json(command: list[str], model: Path, timeout: float = 900) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8"}  # fmt: skip
    output = run([*command, "generate", str(model), *GENERATE], timeout=timeout, env=env)
    result: dict[str, object] = json.loads(output)
    return result


# qemu 7.2's TCG has SSE4.2 (Nehalem) and AVX2/FMA/F16C/BMI2 (Haswell), no AVX-512.
EMULATED_CPUS = (("Nehalem", "SSE4.2"), ("Haswell", "AVX2"))


def bundle_command(unpacked: Path) -> str:
    return str(unpacked / "opt" / "bllossom-desktop" / "bllossom")


def on_emulated_cpu(cpu: str, unpacked: Path) -> list[str]:
    """The bundle's ``bllossom`` run by qemu-user as ``cpu``."""
    exe = bundle_command(unpacked)
    # PyInstaller's bootloader restarts itself (execve) with LD_LIBRARY_PATH set, which
    # would leave qemu-user for the real CPU: give the emulated process the environment
    # of the restarted one (qemu's -E sets it for the guest only).
    bundle = str(unpacked / "opt" / "bllossom-desktop")
    restarted = {"_PYI_ARCHIVE_FILE": exe, "_PYI_PARENT_PROCESS_LEVEL": "-1",
                 "_PYI_LINUX_PROCESS_NAME": "bllossom",
                 "LD_LIBRARY_PATH": f"{bundle}/_internal"}  # fmt: skip
    guest_env = [arg for name, value in restarted.items() for arg in ("-E", f"{name}={value}")]
    return [*LOW, "qemu-x86_64", "-cpu", cpu, *guest_env, exe]


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user")
def test_the_bundle_picks_the_best_cpu_backend_for_each_cpu(unpacked: Path, model: Path) -> None:
    with timed("generate, native CPU"):
        native = generate_json([bundle_command(unpacked)], model)
    device = native["device"]
    assert isinstance(device, dict)
    print(f"native: {device['summary']}", file=sys.stderr)
    assert device["summary"].startswith("CPU: ")
    for cpu, level in EMULATED_CPUS:
        with timed(f"generate under qemu-x86_64 -cpu {cpu}"):
            emulated = generate_json(on_emulated_cpu(cpu, unpacked), model)
        device = emulated["device"]
        assert isinstance(device, dict)
        print(f"{cpu}: {device['summary']}", file=sys.stderr)
        assert device["summary"].startswith(f"CPU: {level}, "), device
        assert emulated["text"], emulated
        # The same greedy reply as the native run: another CPU backend, the same model.
        assert emulated["text"] == native["text"], (cpu, emulated["text"], native["text"])


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user")
def test_the_bundle_converts_byte_for_byte_on_every_cpu(unpacked: Path, tmp_path: Path) -> None:
    """The converter's compiled kernels (converter/_kernels.c: Q8_0, and bf16 -> F16;
    each an AVX2 copy and a baseline one) write the developer install's bytes on each
    CPU."""
    spec = CheckpointSpec(family="llama3-bpe-ko", dtype="bfloat16", legacy_merges=True)
    source = checkpoint(spec)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8"}  # fmt: skip
    for quant in ("Q8_0", "F16"):
        expected = tmp_path / f"dev-{quant}.gguf"
        convert = ["convert", "-q", "--quant", quant, "--no-verify-tokenizer", str(source), "-o"]
        run([sys.executable, "-m", "bllossom_core.cli", *convert, str(expected)], cwd=ROOT)
        for cpu, _level in EMULATED_CPUS:
            output = tmp_path / f"{cpu}-{quant}.gguf"
            with timed(f"convert to {quant} under qemu-x86_64 -cpu {cpu}"):
                run([*on_emulated_cpu(cpu, unpacked), *convert, str(output)], env=env)
            assert output.read_bytes() == expected.read_bytes(), (quant, cpu)


# --------------------------------------------------------------------------- clean Debian 12


@dataclass(frozen=True)
class CleanRoot:
    """A minimal system the .deb is installed into: debootstrap's minbase of ``suite``."""

    suite: str
    mirror: str
    components: str
    keyring: Callable[[], Path] | None = None
    """The archive's signing key for debootstrap (None: the host's own, Debian's)."""


UBUNTU_ARCHIVE_KEY = "F6ECB3762474EDA9D21B7022871920D1991BC93C"
"""Ubuntu Archive Automatic Signing Key (2018), which signs 22.04's archive: pinned here,
as the keyring itself comes over the archive's plain HTTP."""


def ubuntu_keyring() -> Path:
    """Ubuntu's archive key, from its ubuntu-keyring package, checked against the pin."""
    keyring = CACHE / "ubuntu-archive-2018.gpg"
    if keyring.exists():
        return keyring
    work = CACHE / "ubuntu-keyring.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    deb = work / "ubuntu-keyring.deb"
    url = f"{UBUNTU_MIRROR}/pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb"
    run(["curl", "-fsS", "--retry", "3", "-o", str(deb), url], timeout=300)
    run(["dpkg-deb", "-x", str(deb), str(work / "files")])
    found = work / "files" / "etc" / "apt" / "trusted.gpg.d" / "ubuntu-keyring-2018-archive.gpg"
    keys = run(["gpg", "--show-keys", "--with-colons", str(found)])
    fingerprints = [line.split(":")[9] for line in keys.splitlines() if line.startswith("fpr:")]
    assert fingerprints == [UBUNTU_ARCHIVE_KEY], f"unexpected Ubuntu archive keys {fingerprints}"
    shutil.copy(found, keyring)
    shutil.rmtree(work)
    return keyring


UBUNTU_MIRROR = os.environ.get("BLLOSSOM_UBUNTU_MIRROR", "http://archive.ubuntu.com/ubuntu")
CLEAN_ROOTS = {
    # the system the package is built on
    "debian-12": CleanRoot("bookworm", MIRROR, "main"),
    # the oldest the package runs on: glibc 2.35, the bundle's floor; libxcb-cursor0,
    # which Qt's xcb plugin needs, is in universe there
    "ubuntu-22.04": CleanRoot("jammy", UBUNTU_MIRROR, "main universe", ubuntu_keyring),
}


def clean_root(name: str) -> Path:
    """The cached minimal root ``name`` (debootstrap, apt-get update), made on first use.

    Skips where the archive cannot be reached at all (apt fetches the .deb's Depends from
    it, even into a cached root); every other failure stays a failure."""
    spec = CLEAN_ROOTS[name]
    release = f"{spec.mirror}/dists/{spec.suite}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(release, method="HEAD"), timeout=20):
            pass
    except OSError as error:
        pytest.skip(f"{name}: its archive is out of reach from here ({release}: {error})")
    cached = CACHE / f"{spec.suite}-minbase"
    if (cached / ".complete").exists():
        return cached
    if shutil.which("debootstrap") is None:
        pytest.skip("needs debootstrap (apt-get install debootstrap)")
    partial = CACHE / f"{spec.suite}-minbase.partial"
    shutil.rmtree(partial, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    keyring = [f"--keyring={spec.keyring()}"] if spec.keyring else []
    components = f"--components={spec.components.replace(' ', ',')}"
    with timed(f"debootstrap {name} minbase (cached afterwards)"):
        run([*LOW, "debootstrap", "--variant=minbase", components, *keyring, spec.suite,
             str(partial), spec.mirror], timeout=1800)  # fmt: skip
    with chroot(partial) as inside:
        inside("apt-get update -qq", timeout=600)
    (partial / ".complete").write_text("ok\n")
    partial.rename(cached)
    return cached


@contextmanager
def chroot(root: Path) -> Iterator[Callable[..., str]]:
    """``inside(shell_command)`` runs in ``root`` with /proc, /sys and /dev mounted."""
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    mounted: list[Path] = []
    try:
        for source, target, options in (
            ("proc", root / "proc", ["-t", "proc"]),
            ("/sys", root / "sys", ["--rbind"]),
            ("/dev", root / "dev", ["--rbind"]),
        ):
            run(["mount", *options, source, str(target)])
            mounted.append(target)

        def inside(command: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
            environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                           "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
                           **(env or {})}  # fmt: skip
            return run([*LOW, CHROOT, str(root), "/bin/sh", "-c", command],
                       timeout=timeout, env=environment)  # fmt: skip

        yield inside
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "--recursive", "--lazy", str(target)], check=False)


_KOREAN_FONTS = (
    "from PySide6.QtGui import QFontDatabase, QGuiApplication; app = QGuiApplication([]); "
    "families = QFontDatabase.families(QFontDatabase.WritingSystem.Korean); "
    "print(len(families), *families[:3])"
)
"""How many font families Qt can draw Hangul with, and the first few."""


@pytest.fixture(scope="session")
def can_mount(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip where this root may not mount (a container without CAP_SYS_ADMIN): the clean
    roots need /proc, /sys and /dev inside them. Any other failure stays a failure."""
    target = tmp_path_factory.mktemp("mount-probe")
    probe = subprocess.run(["mount", "-t", "tmpfs", "probe", str(target)],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here ({probe.stderr.strip()}): the clean roots need it")
    subprocess.run(["umount", str(target)], check=True)


@pytest.fixture
def display() -> Iterator[str]:
    """An Xvfb on the host; clients in the chroot reach it through its abstract socket
    (one network namespace), so nothing X11 gets installed in the clean root."""
    with xvfb() as name:
        yield name


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot and mounts)")
@pytest.mark.skipif(shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
                    reason="needs Xvfb and xdotool (scripts/setup installs them)")  # fmt: skip
@pytest.mark.parametrize("system", list(CLEAN_ROOTS))
def test_the_deb_installs_runs_and_uninstalls_on_a_clean_system(
    system: str, deb: Path, model: Path, display: str, tmp_path: Path, can_mount: None
) -> None:
    from bllossom_core.store import ConversationStore

    pristine = clean_root(system)
    root = tmp_path / "root"
    with timed(f"{system}: copy the clean root"):
        run(["cp", "-a", str(pristine), str(root)])
    shutil.copy(deb, root / "tmp" / "bllossom-desktop.deb")
    shutil.copy(model, root / "tmp" / "model.gguf")
    # The desktop gets a real instruct model: it answers in a sentence and stops, where a
    # random one writes 1,024 tokens of every script (minutes of font fallback to draw).
    shutil.copy(smollm2_gguf(), root / "tmp" / "smollm2.gguf")
    source = checkpoint(CheckpointSpec(family="llama3-bpe-ko"))
    shutil.copytree(source, root / "tmp" / "checkpoint")
    data = root / "root" / ".local" / "share" / "Bllossom"

    with chroot(root) as inside:
        with timed(f"{system}: apt-get install the .deb (Depends only)"):
            inside("apt-get install -y -qq --no-install-recommends /tmp/bllossom-desktop.deb")
        assert inside("bllossom --version").strip().startswith("bllossom ")
        # Hangul must draw as Hangul: before, the clean root had no Korean font and every
        # Korean label and message was a row of boxes. (The launcher runs `-c CODE`.)
        offscreen = {"QT_QPA_PLATFORM": "offscreen"}
        korean_fonts = inside(f"bllossom -c '{_KOREAN_FONTS}'", env=offscreen)
        assert korean_fonts.split()[0] != "0", korean_fonts
        with timed(f"{system}: bllossom info"):
            info = inside("bllossom info /tmp/model.gguf")
        assert "llama" in info.lower(), info
        with timed(f"{system}: bllossom generate"):
            result = json.loads(inside("bllossom generate /tmp/model.gguf " + " ".join(
                f"'{arg}'" for arg in GENERATE)))  # fmt: skip
        assert result["text"] and result["device"]["summary"].startswith("CPU: "), result
        print(f"{system}: {result['device']['summary']}", file=sys.stderr)

        with timed(f"{system}: bllossom convert (BPE checkpoint to Q4_K_M)"):
            inside("mkdir -p /root/.local/share/Bllossom/models && bllossom convert -q "
                   "/tmp/checkpoint -o /root/.local/share/Bllossom/models/ko.gguf "
                   "--quant Q4_K_M", timeout=900)  # fmt: skip
        converted = data / "models" / "ko.gguf"
        assert converted.stat().st_size > 0
        refused = subprocess.run(
            [*LOW, CHROOT, str(root), "/usr/bin/bllossom", "convert", "/tmp/checkpoint",
             "-o", "/tmp/v.gguf", "--quant", "F16", "--verify"],
            capture_output=True, text=True, timeout=300,
            env={"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"},
        )  # fmt: skip
        assert refused.returncode != 0
        assert "needs the developer install" in refused.stderr, refused.stderr

        with timed(f"{system}: bllossom-desktop under Xvfb: open, answer, quit"):
            env = {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PATH": "/usr/bin:/bin",
                   "HOME": "/root", "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": "/tmp"}  # fmt: skip
            log = (tmp_path / "desktop.log").open("wb")
            app = subprocess.Popen(
                [CHROOT, str(root), "/usr/bin/bllossom-desktop", "--language", "en",
                 "--model", "/tmp/smollm2.gguf"],
                env=env, stdout=log, stderr=log,
            )  # fmt: skip
            host_env = {**os.environ, "DISPLAY": display}

            def xdotool(*args: str) -> str:
                return run(["xdotool", *args], env=host_env, timeout=60)

            def window() -> str:
                assert app.poll() is None, (tmp_path / "desktop.log").read_text(errors="replace")
                found = subprocess.run(
                    ["xdotool", "search", "--onlyvisible", "--name", "Bllossom"],
                    env=host_env, capture_output=True, text=True,
                )  # fmt: skip
                return found.stdout.split()[0] if found.stdout.split() else ""

            try:
                with timed(f"  {system}: bllossom-desktop: the main window shows"):
                    win = str(wait_for(window, 120, "the main window"))
                question = "What is the capital of Germany?"
                xdotool("windowfocus", "--sync", win)
                time.sleep(2)  # the model loads in the background
                xdotool("type", "--delay", "60", question)
                xdotool("key", "Return")

                def answered() -> object:
                    database = data / "conversations.sqlite3"
                    if not database.exists():
                        return None
                    store = ConversationStore(database)
                    try:
                        conversations = store.list_conversations()
                        if len(conversations) != 1:
                            return None
                        thread = store.thread(conversations[0].id)
                    finally:
                        store.close()
                    done = len(thread) == 2 and thread[-1].complete and thread[-1].text
                    return thread if done else None

                with timed(f"  {system}: bllossom-desktop: typed message answered"):
                    thread = wait_for(answered, 180, "the answer")
                assert thread[0].text == question  # type: ignore[index]
                print(f"{system}: the app answered {thread[-1].text!r}", file=sys.stderr)  # type: ignore[index]
                xdotool("windowfocus", "--sync", win)
                xdotool("key", "ctrl+q")
                with timed(f"  {system}: bllossom-desktop: quits"):
                    assert app.wait(60) == 0
            finally:
                if app.poll() is None:
                    app.kill()
                    app.wait(10)
                log.close()
            output = (tmp_path / "desktop.log").read_text(errors="replace")
            for sign in ("Fatal Python error", "Traceback"):
                assert sign not in output, output

        with timed(f"{system}: apt-get purge bllossom-desktop"):
            inside("apt-get purge -y -qq bllossom-desktop")
        for gone in (
            "opt/bllossom-desktop",
            "usr/bin/bllossom",
            "usr/bin/bllossom-desktop",
            "usr/share/applications/io.github.bllossom.BllossomDesktop.desktop",
        ):
            assert not (root / gone).exists() and not (root / gone).is_symlink(), gone
        # The user's conversations and models stay.
        assert (data / "conversations.sqlite3").stat().st_size > 0
        assert converted.stat().st_size > 0


# --------------------------------------------------------------------------- the GPU add-on


@pytest.fixture(scope="session")
def cuda_deb(deb: Path) -> Path:
    """``BLLOSSOM_PACKAGE_CUDA_DEB``, or the bllossom-desktop-cuda .deb of ``deb``'s
    version that ``BLLOSSOM_CUDA=1 scripts/package`` left beside it. Never built here:
    compiling the CUDA backend takes an hour or more and needs nvcc."""
    given = os.environ.get("BLLOSSOM_PACKAGE_CUDA_DEB")
    version = deb.name.split("_")[1]
    found = deb.parent / f"bllossom-desktop-cuda_{version}_amd64.deb"
    chosen = Path(given) if given else found
    if not chosen.is_file():
        pytest.skip(f"no {chosen.name}: BLLOSSOM_CUDA=1 scripts/package builds it (needs nvcc)")
    return chosen.resolve()


# Stand-ins for an NVIDIA driver: its libcuda.so.1 answers cuDriverGetVersion (CUDA 12.8,
# older than driver 580, or 13.0) and nothing else, its nvidia-smi names a GPU.
_DRIVER_C = "int cuDriverGetVersion(int *version) {{ *version = {}; return 0; }}\n"
_NVIDIA_SMI = "#!/bin/sh\necho 'NVIDIA GeForce RTX 3060'\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot and mounts)")
def test_the_cuda_add_on_installs_beside_and_explains_why_it_is_not_used(
    deb: Path, cuda_deb: Path, model: Path, tmp_path: Path, can_mount: None
) -> None:
    """Both packages on a clean Debian 12 without an NVIDIA driver: the CUDA backend's
    libraries all resolve but the driver's, the app runs on the CPU and says no GPU was
    found; beside a driver too old for CUDA 13 it says to update the driver, beside one
    the backend cannot load it quotes the loader; removing the add-on leaves the app as
    it was."""
    pristine = clean_root("debian-12")
    root = tmp_path / "root"
    run(["cp", "-a", str(pristine), str(root)])
    shutil.copy(deb, root / "tmp" / "bllossom-desktop.deb")
    shutil.copy(cuda_deb, root / "tmp" / "bllossom-desktop-cuda.deb")
    shutil.copy(model, root / "tmp" / "model.gguf")
    backend = "/opt/bllossom-desktop/_internal/llama_cpp/lib/libggml-cuda.so"
    generate = "bllossom generate /tmp/model.gguf " + " ".join(f"'{arg}'" for arg in GENERATE)
    with chroot(root) as inside:
        with timed("debian-12: apt-get install both .debs"):
            inside("apt-get install -y -qq --no-install-recommends /tmp/bllossom-desktop.deb "
                   "/tmp/bllossom-desktop-cuda.deb", timeout=900)  # fmt: skip
        missing = [line for line in inside(f"ldd {backend}").splitlines() if "not found" in line]
        assert [line.split()[0] for line in missing] == ["libcuda.so.1"], missing

        no_driver = json.loads(inside(generate))
        assert no_driver["text"], no_driver
        summary = str(no_driver["device"]["summary"])
        assert summary.startswith("CPU: ") and "no NVIDIA GPU found" in summary, summary

        driver = root / "usr" / "lib" / "x86_64-linux-gnu" / "libcuda.so.1"
        smi = root / "usr" / "bin" / "nvidia-smi"
        smi.write_text(_NVIDIA_SMI)
        smi.chmod(0o755)
        source = tmp_path / "libcuda.c"
        for cuda, expected in (
            (12080, "the NVIDIA driver supports CUDA 12.8, and bllossom-desktop-cuda needs "
                    "CUDA 13.0: update the driver to 580 or newer"),
            (13000, "bllossom-desktop-cuda is installed but its CUDA backend did not load ("
                    "/opt/bllossom-desktop/_internal/llama_cpp/lib/libggml-cuda.so: undefined "
                    "symbol: cu"),
        ):  # fmt: skip
            source.write_text(_DRIVER_C.format(cuda))
            run(["gcc", "-shared", "-fPIC", "-o", str(driver), str(source),
                 "-Wl,-soname,libcuda.so.1"])  # fmt: skip
            summary = str(json.loads(inside(generate))["device"]["summary"])
            assert "NVIDIA GeForce RTX 3060 is present" in summary and expected in summary
            print(f"debian-12 + CUDA add-on, driver for CUDA {cuda}: {summary}", file=sys.stderr)

        driver.unlink()
        smi.unlink()
        inside("apt-get remove -y -qq bllossom-desktop-cuda")
        assert not (root / backend.lstrip("/")).exists()
        after = json.loads(inside(generate))
        assert after["text"] == no_driver["text"], (after, no_driver)
