"""Fault injection: kills, concurrency, locks, full disks, immutable folders, owners, bytecode, encodings.

Processes are real wherever one is killed or runs beside another: the CLI,
started through ``tests/fault_injection.py``, whose variables
EAGLE3_PATCH_TEST_STEP_DELAY and EAGLE3_PATCH_TEST_KILL_AFTER widen the windows
between the writer's steps and kill a run right after a named step. Without
them it is exactly ``python -m eagle3_patch``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_CANNOT_WRITE, EXIT_OK, EXIT_UNSUPPORTED
from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME
from eagle3_patch.states import PATCHED, UNPATCHED
from eagle3_patch.write import LOCK_NAME, TEMP_SUFFIX
from tests.conftest import FIXTURES, REPO, MakeInstall, classify_site, patch_site
from tests.fault_injection import KILL_AFTER_ENV, START_GATE_ENV, STEP_DELAY_ENV, gate

TARGETS = ("qwen3_5.py", "qwen3_5_text.py")


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


def command(site: Path, verb: str, *extra: str) -> list[str]:
    launcher = str(REPO / "tests" / "fault_injection.py")
    return [sys.executable, launcher, verb, "--sglang-root", str(site), "--json", *extra]


def run(site: Path, verb: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(site, verb, *extra),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.fixture
def install(make_install: MakeInstall, tmp_path: Path) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """A fixture install, its original bytes, and the bytes a single apply gives (made in a twin)."""
    site = make_install("capture_no_hook", "text_wrapper")
    pristine = {name: (models(site) / name).read_bytes() for name in TARGETS}
    twin = tmp_path / "twin"
    shutil.copytree(site, twin)
    patch_site(twin)
    patched = {name: (models(twin) / name).read_bytes() for name in TARGETS}
    return site, pristine, patched


def assert_whole(site: Path, pristine: dict[str, bytes], patched: dict[str, bytes]) -> dict[str, str]:
    """Every target is the original or the complete patch; every backup absent or the original."""
    states = {}
    for name in TARGETS:
        data = (models(site) / name).read_bytes()
        assert data in (pristine[name], patched[name]), f"{name} is torn"
        states[name] = "patched" if data == patched[name] else "original"
        backup = models(site) / (name + BACKUP_SUFFIX)
        assert not backup.exists() or backup.read_bytes() == pristine[name], f"{name} backup is wrong"
    return states


def leftovers(site: Path) -> list[str]:
    return sorted(p.name for p in models(site).iterdir() if p.name.endswith(TEMP_SUFFIX))


# --- kills ---

KILL_POINTS = [
    ("apply", "lock"),
    ("apply", "backup"),
    ("apply", "backup:2"),
    ("apply", "ledger"),
    ("apply", "bytecode-before"),
    ("apply", "replace"),
    ("apply", "replace:2"),
    ("apply", "bytecode"),
    ("revert", "ledger"),
    ("revert", "bytecode-before"),
    ("revert", "replace"),
    ("revert", "replace:2"),
    ("revert", "bytecode"),
    ("revert", "backup-removed"),
]


@pytest.mark.parametrize(("verb", "step"), KILL_POINTS, ids=[f"{v}-after-{s}" for v, s in KILL_POINTS])
def test_kill_after_each_step_is_recovered(install: tuple, verb: str, step: str) -> None:
    site, pristine, patched = install
    if verb == "revert":
        assert run(site, "apply").returncode == EXIT_OK
    pyc = models(site) / "__pycache__" / "qwen3_5.cpython-311.pyc"
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(b"stale")
    killed = run(site, verb, env={KILL_AFTER_ENV: step})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert_whole(site, pristine, patched)
    assert classify_site(site).state in (PATCHED, UNPATCHED)
    again = run(site, verb)
    assert again.returncode == EXIT_OK, again.stderr
    assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "patched" if verb == "apply" else "original")
    assert not pyc.exists(), "no stale bytecode survives a kill"
    assert leftovers(site) == []
    if verb == "revert":
        assert not list(models(site).glob(f"*{BACKUP_SUFFIX}")) and not (models(site) / LEDGER_NAME).exists()


def _kill_loop(site: Path, pristine: dict[str, bytes], patched: dict[str, bytes], kills: int, seed: int) -> int:
    """Start apply or revert, SIGKILL it at a random moment, check, repeat; returns the kills made."""
    randomness = random.Random(seed)
    env = {**os.environ, STEP_DELAY_ENV: "0.01"}
    lock = site / LOCK_NAME
    made, lock_inode = 0, None
    while made < kills:
        states = assert_whole(site, pristine, patched)
        verb = "revert" if all(s == "patched" for s in states.values()) else "apply"
        process = subprocess.Popen(command(site, verb), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(randomness.uniform(0.08, 0.4))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            made += 1
        process.wait()
        assert_whole(site, pristine, patched)
        assert classify_site(site).state in (PATCHED, UNPATCHED)
        if lock.exists():
            lock_inode = lock_inode or lock.stat().st_ino
            assert lock.stat().st_ino == lock_inode, "the lock file is never replaced"
    return made


@pytest.mark.slow
def test_sigkill_loop_at_random_moments(install: tuple, tmp_path: Path) -> None:
    """200 SIGKILLs at random moments of apply and revert: never a torn file, always recoverable.

    Two installs are killed in parallel (100 each) to use both cores of a CI machine.
    """
    from concurrent.futures import ThreadPoolExecutor

    site, pristine, patched = install
    second = tmp_path / "second"
    shutil.copytree(site, second)
    with ThreadPoolExecutor(2) as pool:
        made = list(
            pool.map(
                lambda args: _kill_loop(*args), [(site, pristine, patched, 100, 1), (second, pristine, patched, 100, 2)]
            )
        )
    assert sum(made) == 200
    for folder in (site, second):
        finished = run(folder, "apply")
        assert finished.returncode == EXIT_OK, finished.stderr
        assert assert_whole(folder, pristine, patched) == dict.fromkeys(TARGETS, "patched")
        assert leftovers(folder) == [], "orphaned temp files are swept under the lock"


def test_orphaned_temp_files_are_swept_on_the_next_run(install: tuple) -> None:
    site, pristine, patched = install
    assert run(site, "apply").returncode == EXIT_OK
    orphan = models(site) / f".qwen3_5.py.x1y2z3{TEMP_SUFFIX}"
    orphan.write_bytes(b"half a file")
    assert run(site, "apply").returncode == EXIT_OK
    assert not orphan.exists()
    assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "patched")


# --- concurrency and locks ---


def _start_many(site: Path, verbs: list[str], folder: Path) -> list[subprocess.Popen[str]]:
    """Start one CLI process per verb, hold each at a gate until all are started, then release them together."""
    env = {**os.environ, START_GATE_ENV: str(folder)}
    processes: list[subprocess.Popen[str]] = []
    try:
        with gate(folder, len(verbs)):
            for verb in verbs:
                processes.append(
                    subprocess.Popen(
                        command(site, verb), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
                    )
                )
    except BaseException:
        for process in processes:
            process.kill()
        raise
    return processes


@pytest.mark.slow
def test_sixteen_concurrent_applies_five_rounds(install: tuple, tmp_path: Path) -> None:
    """16 applies released at the same instant, five times: exactly one writes, the install stays whole.

    Each round's 16 processes wait at a gate (``tests/fault_injection.py``) after
    Python and the CLI are loaded, and enter the command together, so all 16 race
    for the lock and for the first read of the files in every round. Started one
    after another without a gate, most of them found the work already done, which
    is why 20 rounds were once needed to get enough real races; five gated rounds
    give 80 processes that all contend. Without the lock, several processes of a
    round read the files unpatched and write (more than one writer, or a torn or
    doubly patched file), which fails the round.
    """
    site, pristine, patched = install
    for round_ in range(5):
        processes = _start_many(site, ["apply"] * 16, tmp_path / f"gate-{round_}")
        outputs = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in processes]
        assert all(code == EXIT_OK for code, _ in outputs), outputs
        writers = [out for _, out in outputs if any(f["changed"] for f in json.loads(out)["files"])]
        assert len(writers) == 1, "exactly one process writes; the others find it patched"
        assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "patched")
        for name in TARGETS:
            assert (models(site) / (name + BACKUP_SUFFIX)).read_bytes() == pristine[name]
        assert run(site, "revert").returncode == EXIT_OK


@pytest.mark.slow
def test_concurrent_mix_of_apply_and_revert(install: tuple, tmp_path: Path) -> None:
    """16 random applies and reverts released together (a gate, as above), four rounds: never a torn install.

    The gate makes every process of a round contend, so four rounds do what six
    staggered ones did.
    """
    site, pristine, patched = install
    randomness = random.Random(7)
    for round_ in range(4):
        verbs = [randomness.choice(["apply", "revert"]) for _ in range(16)]
        processes = _start_many(site, verbs, tmp_path / f"gate-{round_}")
        results = [
            (verb, p.wait(timeout=120), p.stdout.read() if p.stdout else "")
            for verb, p in zip(verbs, processes, strict=True)
        ]
        assert [code for _, code, _ in results] == [EXIT_OK] * 16, [r for r in results if r[1]]
        states = assert_whole(site, pristine, patched)
        assert len(set(states.values())) == 1, "both files end in the same state"
        assert classify_site(site).state in (PATCHED, UNPATCHED)


def test_lock_timeout_names_the_lock(install: tuple) -> None:
    from filelock import UnixFileLock

    site, pristine, patched = install
    lock_path = site / LOCK_NAME
    with UnixFileLock(lock_path, preserve_lock_file=True):
        started = time.monotonic()
        result = run(site, "apply", "--lock-timeout", "1")
        waited = time.monotonic() - started
    assert result.returncode == EXIT_CANNOT_WRITE
    assert str(lock_path) in json.loads(result.stdout)["error"]
    assert 1 <= waited < 10
    assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "original")
    assert lock_path.exists(), "the lock file is never deleted"


def test_killed_lock_holder_releases_the_lock(install: tuple) -> None:
    site, pristine, patched = install
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import UnixFileLock; "
            "lock = UnixFileLock(sys.argv[1], preserve_lock_file=True); lock.acquire(); print('held', flush=True); "
            "time.sleep(60)",
            str(site / LOCK_NAME),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    assert run(site, "apply", "--lock-timeout", "5").returncode == EXIT_OK
    assert time.monotonic() - started < 5
    assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "patched")


def test_no_op_runs_take_no_lock_and_write_nothing(make_install: MakeInstall) -> None:
    site = make_install("native")
    for verb in ("apply", "revert", "check"):
        assert run(site, verb).returncode == EXIT_OK
    assert not (site / LOCK_NAME).exists()


# --- cannot write ---


def _disk_full() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


def test_disk_full_changes_nothing(release_site: object) -> None:
    site = release_site("0.5.21")  # type: ignore[operator]
    before = {name: (models(site) / name).read_bytes() for name in TARGETS}
    completed = subprocess.run(
        command(site, "apply"), capture_output=True, text=True, preexec_fn=_disk_full, check=False, timeout=120
    )
    assert completed.returncode == EXIT_CANNOT_WRITE, completed.stderr
    error = json.loads(completed.stdout)["error"]
    assert "File too large" in error and "nothing was changed" in error
    assert {name: (models(site) / name).read_bytes() for name in TARGETS} == before
    assert leftovers(site) == []
    assert not list(models(site).glob(f"*{BACKUP_SUFFIX}")) and not (models(site) / LEDGER_NAME).exists()


def _chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("lock_exists", [False, True], ids=["fresh", "lock-file-already-there"])
def test_immutable_folder_changes_nothing(install: tuple, lock_exists: bool) -> None:
    """chattr +i binds root too: nothing can be created in the folder."""
    site, pristine, patched = install
    if lock_exists:
        (site / LOCK_NAME).touch()
    if not _chattr("+i", models(site)):
        pytest.skip("chattr +i is not available here (needs root and ext4/xfs)")
    try:
        result = run(site, "apply")
    finally:
        _chattr("-i", models(site))
    assert result.returncode == EXIT_CANNOT_WRITE, result.stderr
    error = json.loads(result.stdout)["error"]
    assert "nothing was changed" in error
    assert "Operation not permitted" in error or "folder is not writable" in error
    assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "original")
    assert leftovers(site) == []


def test_owner_and_mode_survive_as_root(install: tuple) -> None:
    site, pristine, patched = install
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    target = models(site) / "qwen3_5.py"
    os.chown(target, 1000, 1000)
    target.chmod(0o640)
    assert run(site, "apply").returncode == EXIT_OK
    for path in (target, models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)):
        info = path.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (1000, 1000, 0o640), path
    assert run(site, "revert").returncode == EXIT_OK
    info = target.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777, target.read_bytes()) == (
        1000,
        1000,
        0o640,
        pristine["qwen3_5.py"],
    )


def test_root_applying_on_a_users_install_leaves_the_user_able_to_revert(
    install: tuple, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``sudo eagle3-patch apply`` on nobody's venv: the lock file is nobody's, so nobody's revert works."""
    site, pristine, patched = install
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    import pwd

    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="eagle3-patch-owner-", dir="/tmp"))  # traversable by nobody
    try:
        shared.chmod(0o755)
        users_site = shared / "site"
        shutil.copytree(site, users_site)
        for path in [users_site, *users_site.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        assert run(users_site, "apply").returncode == EXIT_OK  # as root
        lock = (users_site / LOCK_NAME).stat()
        assert (lock.st_uid, lock.st_gid) == (nobody.pw_uid, nobody.pw_gid)
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        reverted = subprocess.run(
            [*as_nobody, *command(users_site, "revert")],
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": str(shared)},
            cwd=shared,
            timeout=120,
            check=False,
        )
        assert reverted.returncode == EXIT_OK, reverted.stderr
        assert {n: (models(users_site) / n).read_bytes() for n in TARGETS} == pristine
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# --- bytecode ---


def _importable(site: Path) -> None:
    for package in ("sglang/srt/models",):
        (site / package / "__init__.py").write_text("")


def _has_hook(site: Path) -> bool:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sglang.srt.models.qwen3_5 as m; "
            "print(hasattr(m.Qwen3_5ForCausalLM, 'set_eagle3_layers_to_capture'))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
        check=True,
    )
    return probe.stdout.strip() == "True"


@pytest.mark.parametrize("mode", ["UNCHECKED_HASH", "CHECKED_HASH", "TIMESTAMP"])
def test_stale_bytecode_never_runs(install: tuple, mode: str) -> None:
    import compileall
    import py_compile

    site, _, _ = install
    _importable(site)
    compileall.compile_dir(str(models(site)), quiet=1, invalidation_mode=getattr(py_compile.PycInvalidationMode, mode))
    cache = models(site) / "__pycache__"
    for tag in ("cpython-310", "cpython-312", "cpython-312.opt-1", "cpython-312.opt-2"):
        (cache / f"qwen3_5.{tag}.pyc").write_bytes(b"other interpreters' bytecode")
    assert not _has_hook(site)
    assert run(site, "apply").returncode == EXIT_OK
    assert not list(cache.glob("qwen3_5.*.pyc")), "every tag and optimisation level is removed"
    assert _has_hook(site), "the patched code runs"
    compileall.compile_dir(
        str(models(site)), quiet=1, force=True, invalidation_mode=getattr(py_compile.PycInvalidationMode, mode)
    )
    assert run(site, "revert").returncode == EXIT_OK
    assert not _has_hook(site), "the original code runs again"


def test_bytecode_that_cannot_be_removed_stops_before_any_change(install: tuple) -> None:
    site, pristine, patched = install
    cache = models(site) / "__pycache__"
    cache.mkdir()
    (cache / "qwen3_5.cpython-311.pyc").write_bytes(b"stale")
    if not _chattr("+i", cache):
        pytest.skip("chattr +i is not available here")
    try:
        result = run(site, "apply")
    finally:
        _chattr("-i", cache)
    assert result.returncode == EXIT_CANNOT_WRITE
    assert "nothing was changed" in json.loads(result.stdout)["error"]
    assert assert_whole(site, pristine, patched) == dict.fromkeys(TARGETS, "original")
    assert not list(models(site).glob(f"*{BACKUP_SUFFIX}")) and not (models(site) / LEDGER_NAME).exists()


# --- encodings ---

BASE = (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
ENCODINGS = {
    "crlf": BASE.replace(b"\n", b"\r\n"),
    "cr": BASE.replace(b"\n", b"\r"),
    "mixed": b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(BASE.split(b"\n")[:-1])),
    "bom": b"\xef\xbb\xbf" + BASE,
    "utf-8 cookie": b"# -*- coding: utf-8 -*-\n# caf\xc3\xa9\n" + BASE,
    "latin-1 cookie": b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + BASE,
    "no final newline": BASE.rstrip(b"\n"),
}


@pytest.mark.parametrize("variant", list(ENCODINGS))
def test_encodings_and_line_endings_survive_byte_for_byte(make_install: MakeInstall, variant: str) -> None:
    site = make_install("capture_no_hook")
    target = models(site) / "qwen3_5.py"
    original = ENCODINGS[variant]
    target.write_bytes(original)
    assert run(site, "apply").returncode == EXIT_OK
    patched = target.read_bytes()
    assert patched.count(b"[EAGLE3-PATCH") == 3
    assert patched.startswith(original[:3]) and original.count(b"\xe9") == patched.count(b"\xe9")
    if variant in ("crlf", "cr"):
        ending = b"\r\n" if variant == "crlf" else b"\r"
        assert patched.replace(ending, b"").count(b"\n") == 0 and patched.count(b"\r") > original.count(b"\r")
    assert run(site, "check").returncode == EXIT_OK
    assert run(site, "revert").returncode == EXIT_OK
    assert target.read_bytes() == original


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (b"# coding: utf-16\n" + BASE, "not ASCII-compatible"),
        (b"\xef\xbb\xbf# coding: latin-1\n" + BASE, "encoding cannot be read"),
        (b"# caf\xe9 without a cookie\n" + BASE, "encoding cannot be read"),
        (BASE + b"# caf\xe9 further down\n", "not valid utf-8"),
    ],
    ids=["utf-16 cookie", "BOM with latin-1 cookie", "latin-1 first line", "latin-1 later line"],
)
def test_unsupported_encodings_are_refused_untouched(make_install: MakeInstall, source: bytes, reason: str) -> None:
    site = make_install("capture_no_hook")
    target = models(site) / "qwen3_5.py"
    target.write_bytes(source)
    result = run(site, "apply")
    assert result.returncode == EXIT_UNSUPPORTED
    assert reason in json.loads(result.stdout)["error"]
    assert target.read_bytes() == source


def test_lone_cr_among_lf_endings_round_trips(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    target = models(site) / "qwen3_5.py"
    source = BASE.replace(b"    def get_input_embeddings", b"\r    def get_input_embeddings", 1)
    target.write_bytes(source)
    assert run(site, "apply").returncode == EXIT_OK
    assert target.read_bytes().count(b"[EAGLE3-PATCH") == 3
    assert run(site, "revert").returncode == EXIT_OK
    assert target.read_bytes() == source
