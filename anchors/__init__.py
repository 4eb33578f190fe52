"""Declarative data for eagle3-patch (targets, templates, verified releases).

This folder ships inside the wheel as the package ``eagle3_patch.anchors`` and
is read with importlib.resources; it holds no code.
"""
