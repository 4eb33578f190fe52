"""The static level: follow, in the installed source, each hook's chain down to the decoder's forward.

A broken link is named by class, method and attribute, so a user sees which
file lacks what, without running anything.
"""

from __future__ import annotations

import ast

from eagle3_patch.classify import InstallReport
from eagle3_patch.source import MethodRef, SourceIndex, calls, constant, delegates
from eagle3_patch.spec import ClassSpec, PatchSpec
from eagle3_patch.verify.levels import CAPTURE_ATTRIBUTE, Check, Level, level_from_checks, present_targets


def static_level(report: InstallReport, spec: PatchSpec, index: SourceIndex) -> Level:
    """Follow hook -> decoder hook -> flag -> forward for every target class present."""
    checks: list[Check] = []
    for file_name, class_spec in present_targets(report):
        if class_spec.role == "decoder":
            checks.extend(_decoder_links(index, spec, file_name, class_spec.name))
        else:
            checks.extend(_wrapper_links(index, spec, file_name, class_spec))
    return level_from_checks("static", checks, passed="every link from the hooks to the forwards is in place")


def _decoder_links(index: SourceIndex, spec: PatchSpec, file_name: str, class_name: str) -> list[Check]:
    flag = spec.capture_flag
    hook = index.find_method(file_name, class_name, spec.hook)
    checks = [
        Check(
            f"{class_name}.{spec.hook}", False, f"{class_name} ({file_name}) has no {spec.hook}: nothing flags layers"
        )
        if hook is None
        else Check(
            _where(hook, class_name, file_name, spec.hook),
            _sets_true(hook.node, flag),
            f"sets {flag} on the requested layers"
            if _sets_true(hook.node, flag)
            else f"never sets {flag}, the attribute {class_name}.forward reads",
        )
    ]
    forward = index.find_method(file_name, class_name, "forward")
    reads = forward is not None and _touches(forward.node, flag, store=False)
    checks.append(
        Check(
            f"{class_name}.forward",
            reads,
            f"passes a capture list to layers whose {flag} is set" if reads else f"never reads {flag}",
        )
    )
    return checks


def _wrapper_links(index: SourceIndex, spec: PatchSpec, file_name: str, class_spec: ClassSpec) -> list[Check]:
    name = class_spec.name
    decoder_file, _, decoder = (class_spec.decoder or ":").partition(":")
    hook = index.find_method(file_name, name, spec.hook)
    if hook is None:
        return [Check(f"{name}.{spec.hook}", False, f"{name} ({file_name}) has no {spec.hook}, own or inherited")]
    where = _where(hook, name, file_name, spec.hook)
    if delegates(hook.node, spec.hook):
        link = Check(where, True, f"delegates to self.model.{spec.hook} ({decoder})")
    else:
        detail = f"never calls self.model.{spec.hook}"
        decoder_forward = index.find_method(decoder_file, decoder, "forward")
        if _touches(hook.node, "layers_to_capture", store=True) and not (
            decoder_forward is not None and _touches(decoder_forward.node, "layers_to_capture", store=False)
        ):
            detail += f"; it writes self.model.layers_to_capture, which {decoder}.forward never reads"
        link = Check(where, False, detail)
    sets_capture = _sets_true(hook.node, CAPTURE_ATTRIBUTE)
    checks = [
        link,
        Check(
            where,
            sets_capture,
            f"sets self.{CAPTURE_ATTRIBUTE}" if sets_capture else f"never sets self.{CAPTURE_ATTRIBUTE}",
        ),
    ]
    forward = index.find_method(file_name, name, "forward")
    unpacks = forward is not None and (
        _touches(forward.node, CAPTURE_ATTRIBUTE, store=False) or _checks_for_tuple(forward.node)
    )
    checks.append(
        Check(
            _where(forward, name, file_name, "forward") if forward else f"{name}.forward",
            unpacks,
            "unpacks the decoder's (hidden_states, aux_hidden_states)"
            if unpacks
            else f"reads neither self.{CAPTURE_ATTRIBUTE} nor a returned tuple",
        )
    )
    return checks


def _where(ref: MethodRef, class_name: str, file_name: str, method: str) -> str:
    if (ref.owner, ref.file) == (class_name, file_name):
        return f"{class_name}.{method}"
    return f"{class_name}.{method} (inherited from {ref.owner} in {ref.file})"


def _touches(node: ast.AST, attribute: str, *, store: bool) -> bool:
    """``node`` writes (store) or reads ``attribute``, directly or through set/getattr."""
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr == attribute and isinstance(child.ctx, ast.Store) == store:
            return True
    accessor = "setattr" if store else "getattr"
    return any(
        receiver is None and len(args) >= 2 and constant(args[1]) == attribute
        for receiver, args in calls(node, accessor)
    )


def _sets_true(node: ast.AST, attribute: str) -> bool:
    """``node`` sets ``attribute`` to True (``x.attribute = True`` or ``setattr(x, "attribute", True)``)."""
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Assign)
            and isinstance(child.value, ast.Constant)
            and child.value.value is True
            and any(isinstance(t, ast.Attribute) and t.attr == attribute for t in child.targets)
        ):
            return True
    return any(
        receiver is None and len(args) == 3 and constant(args[1]) == attribute and constant(args[2]) is True
        for receiver, args in calls(node, "setattr")
    )


def _checks_for_tuple(node: ast.AST) -> bool:
    return any(
        receiver is None and len(args) == 2 and isinstance(args[1], ast.Name) and args[1].id == "tuple"
        for receiver, args in calls(node, "isinstance")
    )
