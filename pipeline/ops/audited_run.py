"""Run a Python module as a child server: ``python -m pipeline.ops.audited_run [--nice N] MODULE
ARGS...``. It installs the network audit first when ``JETVOICE_NETWORK_AUDIT`` is set, and with
``--nice`` lowers its own CPU priority before the module starts any thread (Linux gives each
thread its own niceness, inherited from the thread that creates it), which is how ``jetvoice
serve`` starts the llama.cpp server."""

from __future__ import annotations

import os
import runpy
import sys

from pipeline.ops.network_audit import install_from_environment


def main() -> None:
    """Install the audit hook, lower the priority if asked, then run the named module."""
    args = sys.argv[1:]
    niceness = 0
    if len(args) >= 2 and args[0] == "--nice":
        niceness = int(args[1])
        args = args[2:]
    if not args:
        raise SystemExit("usage: python -m pipeline.ops.audited_run [--nice N] MODULE [ARGS...]")
    install_from_environment()
    if niceness > 0 and hasattr(os, "nice"):
        os.nice(niceness)
    module = args[0]
    sys.argv = [module, *args[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
