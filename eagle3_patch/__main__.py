"""``python -m eagle3_patch``: the same as the ``eagle3-patch`` command."""

from eagle3_patch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
