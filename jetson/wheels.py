"""`just check-aarch64`: does every pinned dependency in uv.lock have a wheel for the Jetson?

Exports the locked requirements (all extras, no dev tools), then asks uv, one package at a time
and without installing anything, to resolve each exact pin for aarch64 Linux and the Jetson's
Python with wheels only. Packages with no aarch64 wheel are listed as "builds from source"
(llama-cpp-python is expected there: the Jetson runs vLLM instead). Reaches PyPI, so it is a
recipe, not part of `just test`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

PLATFORM = "aarch64-manylinux_2_35"  # JetPack 6 is Ubuntu 22.04: glibc 2.35
# llama-cpp-python: compiled (the Jetson runs vLLM instead); docopt: a pure-Python sdist.
EXPECTED_FROM_SOURCE = {"llama-cpp-python", "docopt"}


@dataclass(frozen=True)
class Verdict:
    """One requirement and what uv found for it."""

    requirement: str
    wheel: bool
    detail: str


def locked_requirements() -> list[str]:
    """``name==version ; markers`` lines for every locked package (all extras, no dev group)."""
    out = subprocess.run(
        [
            "uv",
            "export",
            "--locked",
            "--all-extras",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--format",
            "requirements-txt",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line.strip()
        for line in out.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]


def check(requirement: str, python: str) -> Verdict:
    """Resolve one pin for the Jetson with wheels only."""
    result = subprocess.run(
        [
            "uv",
            "pip",
            "compile",
            "-",
            "--no-deps",
            "--no-header",
            "--only-binary",
            ":all:",
            "--python-platform",
            PLATFORM,
            "--python-version",
            python,
            "--quiet",
        ],
        input=requirement + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode == 0:
        return Verdict(requirement, True, "wheel")
    last = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return Verdict(requirement, False, last[-1].strip() if last else "no wheel")


def main(argv: list[str] | None = None) -> int:
    """Print one line per package; exit 1 when an unexpected package has no aarch64 wheel."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", default="3.12", help="the Jetson's Python (default: 3.12)")
    args = parser.parse_args(argv)
    requirements = locked_requirements()
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda r: check(r, args.python), requirements))
    source = [v for v in verdicts if not v.wheel]
    for v in verdicts:
        print(f"{'wheel' if v.wheel else 'SOURCE':<7} {v.requirement}")
    unexpected = [
        v for v in source if v.requirement.split("==")[0].lower() not in EXPECTED_FROM_SOURCE
    ]
    print(
        f"\n{len(verdicts) - len(source)} of {len(verdicts)} pinned packages have an aarch64 "
        f"wheel for CPython {args.python} ({PLATFORM})"
    )
    for v in source:
        tag = "expected" if v not in unexpected else "UNEXPECTED"
        print(f"builds from source ({tag}): {v.requirement}\n    {v.detail}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
