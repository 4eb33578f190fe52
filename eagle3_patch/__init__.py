"""eagle3-patch: give SGLang's Qwen3.5/Qwen3.6 models the EAGLE-3 capture hook they lack.

Importing the package does nothing else: every module is loaded only by the command that needs it.
"""

__version__ = "0.1.0"

#: Names the sglang folder to work on when neither --sglang-root nor --python is given.
ROOT_ENV = "EAGLE3_PATCH_SGLANG_ROOT"
