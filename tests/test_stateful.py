"""A model-based test of apply, revert, check and status against everything a user and pip do (issue 20).

A seeded random walk (``tests/stateful_walk.py`` has the machinery, and says
why a walk rather than hypothesis' state machines) on a real release unpacked
from the cached wheels: tool steps in-process with CliRunner, SIGKILLed ones in
a subprocess, user edits of every kind, the model card's one-shot script, pip
reinstalls, upgrades and downgrades between 0.5.16, 0.5.21 and 0.5.23, and
spells without hard links. ``stateful_walk.Oracle``'s docstring is the
contract: what must stay recoverable after every tool step, what a user's own
step releases, and which printed claims must be true of the disk.

Each run walks ``EAGLE3_PATCH_STATEFUL_STEPS`` steps (default 1,000) twice:
once from the fixed seed, once from a random one, 2,000 steps in all. A
failure names the seed, the step, the last 20 steps and a shrunk sequence.

- a longer run: ``EAGLE3_PATCH_STATEFUL_SEED=N EAGLE3_PATCH_STATEFUL_STEPS=20000
  python -m pytest tests/test_stateful.py -k random_seed`` (the seed is
  optional; without it a random one is drawn and printed on failure);
- a printed sequence again: ``EAGLE3_PATCH_STATEFUL_SCRIPT='start=0.5.21;
  apply(out=json); revert(out=text)' python -m pytest tests/test_stateful.py
  -k replay_script``;
- bisecting: ``EAGLE3_PATCH_STATEFUL_EXCLUDE=edit-unmark,kill-*`` leaves step
  kinds out (fnmatch patterns over ``stateful_walk.ALL_KINDS``;
  ``text-output`` makes every tool step use --json);
- every distinct failure at once: ``EAGLE3_PATCH_STATEFUL_KEEP_GOING=1`` starts
  a fresh install after each failure and reports them all, each shrunk, at
  the end; ``EAGLE3_PATCH_STATEFUL_SHRINK_SECONDS`` bounds the shrinking of
  each (default 60).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from eagle3_patch.ledger import BACKUP_SUFFIX
from tests import stateful_walk as sw
from tests.stateful_walk import Violation, Walk, step

FIXED_SEED = 20
DEFAULT_STEPS = 1000


def _steps() -> int:
    return int(os.environ.get(sw.STEPS_ENV) or DEFAULT_STEPS)


def _exclude() -> set[str]:
    return sw.excluded_kinds(os.environ.get(sw.EXCLUDE_ENV))


def _shrink_seconds() -> float:
    return float(os.environ.get(sw.SHRINK_ENV) or 60)


def _walk(tmp_path: Path, seed: int, selector: str) -> None:
    steps, exclude = _steps(), _exclude()
    started = time.monotonic()
    if os.environ.get(sw.KEEP_GOING_ENV):
        failures = sw.explore(tmp_path, seed=seed, steps=steps, exclude=exclude, shrink_s=_shrink_seconds(), log=print)
        assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(f.message() for f in failures)
        return
    walk = Walk(tmp_path / "walk", seed=seed, exclude=exclude)
    try:
        walk.run(steps)
    except Violation as exc:
        violation = exc
    else:
        violation = None
    if violation is not None:  # reported outside the except block: the message alone, no chained traceback
        where = f"{sw.SEED_ENV}={seed} " if selector == "random_seed" else ""
        again = f"{where}{sw.STEPS_ENV}={len(walk.history)} python -m pytest tests/test_stateful.py -k {selector}"
        failure = sw.walk_failure(walk, violation, again)
        shrink_started = time.monotonic()
        failure.minimal = sw.shrink(tmp_path, failure, _shrink_seconds())
        failure.shrink_seconds = time.monotonic() - shrink_started
        pytest.fail(failure.message(), pytrace=False)
    print(f"stateful walk: seed={seed}, {steps} steps in {time.monotonic() - started:.1f} s")
    print(sw.timing_summary(walk.timings))


@pytest.mark.corpus
def test_walk_fixed_seed(tmp_path: Path) -> None:
    _walk(tmp_path, FIXED_SEED, "fixed_seed")


@pytest.mark.corpus
def test_walk_random_seed(tmp_path: Path) -> None:
    seed = int(os.environ.get(sw.SEED_ENV) or random.SystemRandom().randrange(2**32))
    _walk(tmp_path, seed, "random_seed")


@pytest.mark.corpus
@pytest.mark.skipif(not os.environ.get(sw.SCRIPT_ENV), reason=f"replays {sw.SCRIPT_ENV} when it is set")
def test_replay_script(tmp_path: Path) -> None:
    """Replay a sequence printed by a failure (``start=VERSION; step; step(arg=value,...); ...``)."""
    version, steps = sw.parse_steps(os.environ[sw.SCRIPT_ENV])
    walk = Walk(tmp_path / "walk", seed=0, version=version)
    failure = None
    try:
        for todo in steps:
            walk.do(todo)
    except Violation as exc:
        script = os.environ[sw.SCRIPT_ENV]
        again = f"{sw.SCRIPT_ENV}='{script}' python -m pytest tests/test_stateful.py -k replay_script"
        failure = sw.walk_failure(walk, exc, again)
    if failure is not None:
        pytest.fail(failure.message(), pytrace=False)


# --- the harness itself: pip, the one-shot script, the oracle, the messages ---


def test_pip_simulation_replaces_listed_files_and_keeps_the_users(tmp_path: Path) -> None:
    """An upgrade leaves exactly the new release plus the files no RECORD listed; a downgrade drops qwen3_5_text.py."""
    site = tmp_path / "site"
    site.mkdir()
    sw.pip_install(site, sw.release("0.5.21"))
    models = site / sw.MODELS
    (models / "mine.txt").write_bytes(b"the user's")
    (models / "qwen3_5.py").write_bytes(b"edited")
    assert sw.pip_install(site, sw.release("0.5.23")) == ["qwen3_5.py", "qwen3_5_text.py"]
    new = sw.release("0.5.23")
    on_disk = {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert on_disk.pop("sglang/srt/models/mine.txt") == b"the user's"
    assert on_disk == new.files
    assert sw.pip_install(site, sw.release("0.5.16")) == ["qwen3_5.py", "qwen3_5_text.py"]
    assert not (models / "qwen3_5_text.py").exists() and (models / "mine.txt").exists()
    assert sw.installed_version(site) == "0.5.16"


def test_one_shot_script_reads_as_an_older_block_and_is_idempotent(tmp_path: Path) -> None:
    walk = Walk(tmp_path, seed=0)
    models = walk.models
    original = (models / "qwen3_5.py").read_bytes()
    assert sw.one_shot_script(models).startswith("patched")
    assert (models / ("qwen3_5.py" + BACKUP_SUFFIX)).read_bytes() == original
    once = (models / "qwen3_5.py").read_bytes()
    assert sw.one_shot_script(models) == "already patched (marker found)"
    assert (models / "qwen3_5.py").read_bytes() == once
    outcome = walk.invoke(["status"], as_json=True)
    states = {(f["name"], c["name"]): c["state"] for f in outcome.payload["files"] for c in f["classes"]}
    assert states[("qwen3_5.py", "Qwen3_5ForCausalLM")] == "patched-old"
    assert states[("qwen3_5.py", "Qwen3_5ForConditionalGeneration")] == "patched-old"
    assert states[("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration")] == "unpatched"


def test_every_edit_kind_applies_to_a_patched_file(tmp_path: Path) -> None:
    walk = Walk(tmp_path, seed=0)
    walk.do(step("apply", out="json"))
    text = (walk.models / "qwen3_5.py").read_text()
    assert len(sw.our_blocks(text)) == 3
    for kind in sw.EDIT_KINDS:
        edited = sw.edit_text(kind, text, random.Random(1))
        if kind == "edit-reparse":
            assert edited is None  # nothing to undo
            continue
        assert edited is not None and edited != text, kind
        assert sw._parses(edited) == (kind != "edit-unparseable"), kind
    broken = sw.edit_text("edit-unparseable", text, random.Random(2))
    assert sw.edit_text("edit-reparse", broken, random.Random(0)) == text


def test_oracle_catches_a_tool_that_loses_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: a revert whose writer skips putting the files back, then drops the backups, is caught."""
    from eagle3_patch import write

    walk = Walk(tmp_path, seed=0)
    walk.do(step("apply", out="json"))
    monkeypatch.setattr(write, "_replace", lambda journal, change: None)
    with pytest.raises(Violation) as caught:
        walk.do(step("revert", out="json"))
    assert caught.value.check == "lost" and "qwen3_5.py as it was before step 0" in caught.value.message


def test_failure_message_names_seed_step_history_and_replay(tmp_path: Path) -> None:
    walk = Walk(tmp_path, seed=123)
    walk.do(step("apply", out="json"))
    walk.do(step("check", out="text"))
    failure = sw.walk_failure(walk, Violation("lost", "an example"))
    failure.minimal = ("0.5.21", [step("apply", out="json")])
    text = failure.message()
    assert "seed=123" in text and "step 1" in text and "0 apply(out=json)" in text and "1 check(out=text)" in text
    assert f"{sw.SCRIPT_ENV}='start=0.5.21; apply(out=json)'" in text
    assert sw.parse_steps("start=0.5.16; apply(out=json); edit-inside(file=qwen3_5.py,seed=3,inplace=1)") == (
        "0.5.16",
        [step("apply", out="json"), step("edit-inside", file="qwen3_5.py", seed=3, inplace=1)],
    )


def test_exclusion_patterns() -> None:
    assert sw.excluded_kinds("kill-*,edit-unmark") == {"kill-apply", "kill-revert", "kill-revert-force", "edit-unmark"}
    with pytest.raises(ValueError, match="match no step kind"):
        sw.excluded_kinds("no-such-step")
