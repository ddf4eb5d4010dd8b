"""Run a Python module with the network audit installed first (``python -m pipeline.audited_run
MODULE ARGS...``): how ``jetvoice serve`` starts the LLM server when the audit is on."""

from __future__ import annotations

import runpy
import sys

from pipeline.network_audit import install_from_environment


def main() -> None:
    """Install the audit hook, then run the named module as ``__main__``."""
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m pipeline.audited_run MODULE [ARGS...]")
    install_from_environment()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
