"""Property tests (Hypothesis) over generated Qwen3.5-shaped modules.

For any newline style (LF, CRLF, CR, mixed), with or without a BOM or an
encoding cookie, with comments and blank lines anywhere in the target classes
and their methods in any order:

    revert(apply(b)) == b
    apply(apply(b)) == apply(b)
    apply(b) differs from b only by inserted lines, each block led by our marker
    apply(b) compiles
"""

from __future__ import annotations

import difflib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eagle3_patch.marker import MARKER_TAG
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE, PATCHED, UNPATCHED
from eagle3_patch.write import execute
from tests.conftest import FIXTURES, classify_site

DECODER_METHODS = {
    "forward": "def forward(self, x):\n    for layer in self.layers:\n"
    '        x = layer(x, getattr(layer, "_is_layer_to_capture", False))\n    return x\n',
    "set_dflash_layers_to_capture": "def set_dflash_layers_to_capture(self, ids):\n    for i in ids:\n"
    '        setattr(self.layers[i], "_is_layer_to_capture", True)\n',
    "get_input_embeddings": "def get_input_embeddings(self):\n    return self.embed_tokens\n",
    "load_weights": "def load_weights(self, weights):\n    # weights arrive in shards\n    return set()\n",
}
WRAPPER_METHODS = {
    "get_embed_and_head": "def get_embed_and_head(self):\n    return self.model.embed_tokens, self.lm_head\n",
    "set_embed_and_head": "def set_embed_and_head(self, embed, head):\n    self.lm_head = head\n",
    "load_weights": "def load_weights(self, weights):\n    return set()\n",
}

NEWLINES = st.sampled_from(["\n", "\r\n", "\r", "mixed"])
COOKIES = st.sampled_from([None, "utf-8", "latin-1"])
FILLER = st.lists(st.sampled_from(["", "# a note", "    # an indented note"]), max_size=2)


@st.composite
def class_body(draw: st.DrawFn, methods: dict[str, str], required: tuple[str, ...]) -> str:
    chosen = draw(st.lists(st.sampled_from(sorted(methods)), unique=True))
    names = draw(st.permutations(sorted(set(chosen) | set(required))))
    parts = []
    for name in names:
        filler = draw(FILLER)
        parts.extend(line.replace("    # an indented", "# an indented") for line in filler)
        parts.append(methods[name])
    body = "\n".join(parts)
    return "".join(("    " + line if line.strip() else line) + "\n" for line in body.splitlines())


@st.composite
def modules(draw: st.DrawFn) -> bytes:
    newline = draw(NEWLINES)
    cookie = draw(COOKIES)
    bom = draw(st.booleans()) and cookie in (None, "utf-8")
    decoder = draw(class_body(DECODER_METHODS, ("forward",)))
    wrapper = draw(class_body(WRAPPER_METHODS, ()))
    moe_wrapper = draw(class_body(WRAPPER_METHODS, ()))
    header = f"# -*- coding: {cookie} -*-\n# café\n" if cookie else "# plain header\n"
    text = (
        header
        + "from .qwen3_vl import Qwen3VLForConditionalGeneration\n\n\n"
        + "class Qwen3_5ForCausalLM:\n"
        + (decoder or "    pass\n")
        + "\n\nclass Qwen3_5MoeForCausalLM(Qwen3_5ForCausalLM):\n    pass\n\n\n"
        + "class Qwen3_5ForConditionalGeneration(Qwen3VLForConditionalGeneration):\n"
        + (wrapper or "    pass\n")
        + "\n\nclass Qwen3_5MoeForConditionalGeneration(Qwen3VLForConditionalGeneration):\n"
        + (moe_wrapper or "    x = 1\n")
    )
    if not draw(st.booleans()):
        text = text.rstrip("\n")
    if newline == "mixed":  # LF and CRLF, line by line
        lines = text.split("\n")
        text = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines[:-1])) + lines[-1]
    else:
        text = text.replace("\n", newline)
    data = text.encode(cookie or "utf-8")
    return (b"\xef\xbb\xbf" if bom else b"") + data


def _apply(site: Path) -> None:
    from eagle3_patch.plan import plan_apply

    plan = plan_apply(classify_site(site), load_spec())
    if plan.write is not None:
        execute(plan.write)


def _revert(site: Path) -> None:
    from eagle3_patch.plan import plan_revert

    plan = plan_revert(classify_site(site), load_spec())
    if plan.write is not None:
        execute(plan.write)


def _only_marked_insertions(before: bytes, after: bytes) -> bool:
    """Independent of eagle3-patch's own checks: a byte diff with nothing but inserted, marked blocks."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag != "insert" or MARKER_TAG.encode() not in after[j1:j2]:
            return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=modules())
def test_apply_and_revert_properties(source: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        models = Path(folder) / "sglang" / "srt" / "models"
        models.mkdir(parents=True)
        shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_vl.py", models / "qwen3_vl.py")
        compile(source, "qwen3_5.py", "exec", dont_inherit=True)  # the generator makes valid Python only
        target = models / "qwen3_5.py"
        target.write_bytes(source)
        site = Path(folder)
        assert classify_site(site).state == UNPATCHED

        _apply(site)
        patched = target.read_bytes()
        assert classify_site(site).state == PATCHED
        assert patched.count(MARKER_TAG.encode()) == 3
        assert _only_marked_insertions(source, patched)
        compile(patched, "qwen3_5.py", "exec", dont_inherit=True)

        _apply(site)
        assert target.read_bytes() == patched, "apply(apply(b)) == apply(b)"

        _revert(site)
        assert target.read_bytes() == source, "revert(apply(b)) == b"
        assert classify_site(site).state in (UNPATCHED, NATIVE)
