"""The one place jetvoice touches the internals of pipecat, aiortc and aioice.

Where these libraries offer no public way to do what jetvoice needs (replace a receiver's jitter
buffer, give a sender its encoder, drop audio queued for a closed peer, filter ICE by address...),
the private name is read, written or patched here, one small module per library, behind a
function or class with a public name that says what it does and why it is needed:
:mod:`services.seams.pipecat_seams`, :mod:`services.seams.aiortc_seams`,
:mod:`services.seams.aioice_seams`. Every name used here is checked against the pinned versions by
``tests/unit/test_library_seams.py``, so an upgrade that renames or rewrites one fails there, by
name, instead of silently in a call; the same test fails on a private library name used anywhere
else in ``pipeline/`` or ``services/``.

It sits under ``services/`` because both the model services and the voice pipeline need it, and
``services`` imports nothing from ``pipeline`` (but its config types): ``pipeline`` may import
from here, the other way round would not be allowed.
"""
