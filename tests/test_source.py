"""source.py: what ast and tokenize say about a model file."""

from __future__ import annotations

import ast

import pytest

from eagle3_patch.source import (
    body_names,
    calls,
    class_spans,
    delegates,
    detect_encoding,
    encoding_problem,
    source_lines,
)


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        (b"x = 1\n", "utf-8"),
        (b"\xef\xbb\xbfx = 1\n", "utf-8-sig"),
        (b"# -*- coding: latin-1 -*-\nx = 1\n", "iso-8859-1"),
        (b"#!/usr/bin/env python\r# coding: latin-1\rx = 1\r", "iso-8859-1"),
    ],
)
def test_detect_encoding_reads_the_cookie_on_any_line_ending(content: bytes, encoding: str) -> None:
    assert detect_encoding(content) == encoding


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"x = '\xc3\xa9'\n", ""),
        (b"x = '\xff'\n", "cannot be read"),  # tokenize refuses undecodable utf-8 outright
        (b"# coding: utf-16\nx = 1\n", "not valid utf-16"),
        (b"# coding: no-such-codec\nx = 1\n", "cannot be read"),
    ],
)
def test_encoding_problem(content: bytes, problem: str) -> None:
    found = encoding_problem(content)
    assert (problem in found) if problem else found == ""


def test_source_lines_end_at_cr_lf_and_crlf() -> None:
    assert source_lines(b"a\rb\nc\r\nd") == ["a", "b", "c", "d"]


def test_class_spans_follow_the_last_definition_and_its_decorators() -> None:
    tree = ast.parse("class A:\n    pass\n\n@decorate\nclass A:\n    x = 1\n    y = 2\n\nclass B: pass\n")
    assert [(s.name, s.first_line, s.last_line) for s in class_spans(tree)] == [("A", 4, 7), ("B", 9, 9)]


def test_body_names_and_calls() -> None:
    node = ast.parse(
        "class A:\n"
        "    x = 1\n"
        "    def hook(self, ids):\n"
        "        self.model.hook(ids)\n"
        "        setattr(self, 'flag', True)\n"
        "    async def forward(self):\n"
        "        pass\n"
    ).body[0]
    assert isinstance(node, ast.ClassDef)
    assert body_names(node) == ["", "hook", "forward"]
    method = node.body[1]
    assert isinstance(method, ast.FunctionDef)
    assert delegates(method, "hook")
    assert not delegates(method, "other")
    assert [receiver is None for receiver, _ in calls(method, "setattr")] == [True]
