"""``eagle3-patch doctor``: a target and an EAGLE-3 drafter, checked against each other and the installed SGLang.

``checkpoint`` reads configs and safetensors headers (never tensors, no torch);
``release`` reads what the installed SGLang knows, with ``ast`` and byte
searches (never importing it); ``rules`` names every mistake that would crash or
silently waste the drafter; ``launch`` builds the command that works on that
release. Nothing here writes or takes the lock.
"""
