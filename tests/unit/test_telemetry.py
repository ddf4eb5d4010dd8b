"""Every dependency's telemetry is off on every entry point, and `jetvoice doctor` says when an
environment tries to turn one on (the system-call proof is tests/e2e/test_syscall_audit.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from pipeline.ops.doctor import Machine, check_telemetry
from services import telemetry
from services.telemetry import SWITCH_NAMES, SWITCHES, force_off, turned_on

REPO = Path(__file__).resolve().parents[2]
OFF = {s.name: s.value for s in SWITCHES}


def _machine(env: Mapping[str, str], outputs: Mapping[str, str] | None = None) -> Machine:
    def run(argv: Sequence[str]) -> str | None:
        return (outputs or {}).get(argv[0])

    return Machine(
        python=(3, 11, 7),
        arch="x86_64",
        tegra_release=None,
        meminfo={},
        env=env,
        run=run,
    )


def test_force_off_sets_every_switch_and_returns_what_was_there() -> None:
    env = {"ORT_DISABLE_TELEMETRY": "0", "DO_NOT_TRACK": "1", "PATH": "/bin"}
    before = force_off(env)
    assert before == {"ORT_DISABLE_TELEMETRY": "0", "DO_NOT_TRACK": "1"}
    assert {k: env[k] for k in SWITCH_NAMES} == OFF
    assert env["PATH"] == "/bin"


def test_turned_on_tells_off_values_from_on_ones() -> None:
    assert turned_on({}) == []
    assert turned_on(OFF, unset_is_on=True) == []
    found = turned_on({"ORT_DISABLE_TELEMETRY": "0", "HF_HUB_OFFLINE": "TRUE", "DO_NOT_TRACK": ""})
    assert [(s.name, v) for s, v in found] == [("ORT_DISABLE_TELEMETRY", "0"), ("DO_NOT_TRACK", "")]
    assert {s.name for s, _ in turned_on({}, unset_is_on=True)} == SWITCH_NAMES


@pytest.mark.parametrize(
    "entry",
    [
        "import pipeline.cli",  # the `jetvoice` console script
        "import pipeline.ops.audited_run",  # how the llama.cpp server child starts
        "import services.tts",  # Kokoro's onnxruntime
        "import models.cli",
    ],
)
def test_every_package_forces_the_switches_before_onnxruntime_can_load(entry: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SWITCH_NAMES}
    env["ORT_DISABLE_TELEMETRY"] = "0"  # a user's environment trying to turn it on
    # Records the environment at the moment onnxruntime is first imported, by whoever.
    probe = (
        "import importlib.abc, json, os, sys\n"
        "seen = []\n"
        "class Spy(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'onnxruntime' and not seen:\n"
        f"            seen.append({{k: os.environ.get(k) for k in {sorted(SWITCH_NAMES)!r}}})\n"
        "sys.meta_path.insert(0, Spy())\n"
        f"{entry}\n"
        "import onnxruntime\n"
        "print(json.dumps(seen[0]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == OFF


def test_the_jetson_unit_and_container_carry_every_switch() -> None:
    unit = (REPO / "jetson" / "systemd" / "jetvoice.service.in").read_text()
    assigned = dict(
        item.split("=", 1)
        for line in unit.splitlines()
        if line.startswith("Environment=")
        for item in line.removeprefix("Environment=").split()
    )
    compose = (REPO / "jetson" / "compose.yaml").read_text()
    in_compose = dict(re.findall(r'^\s+([A-Z_]+): "([^"]*)"$', compose, flags=re.MULTILINE))
    for name, value in OFF.items():
        assert assigned.get(name) == value, f"jetvoice.service.in: {name}"
        assert in_compose.get(name) == value, f"compose.yaml: {name}"


def test_doctor_is_quiet_when_every_switch_is_off() -> None:
    findings = check_telemetry(_machine({"HOME": "/nonexistent"}), effective=OFF)
    assert [(f.check, f.status) for f in findings] == [("telemetry", "ok")]


def test_doctor_warns_when_the_users_environment_turns_one_on() -> None:
    findings = check_telemetry(_machine({"ORT_DISABLE_TELEMETRY": "0"}), effective=OFF)
    assert [(f.check, f.status) for f in findings] == [("telemetry", "warn")]
    assert (
        "ORT_DISABLE_TELEMETRY=0" in findings[0].detail
        and "forces every switch off" in findings[0].detail
    )


def test_doctor_fails_when_a_switch_is_on_in_its_own_process() -> None:
    effective = {**OFF, "ORT_DISABLE_TELEMETRY": "0"}
    findings = check_telemetry(_machine({}), effective=effective)
    assert [(f.check, f.status) for f in findings] == [("telemetry", "fail")]


def test_doctor_reads_the_unit_and_the_vllm_container() -> None:
    container = json.dumps([f"{k}={v}" for k, v in OFF.items() if k != "VLLM_NO_USAGE_STATS"])
    outputs = {
        "systemctl": "Environment=JETVOICE_MODELS_DIR=/m DO_NOT_TRACK=0\n",
        "docker": container,
    }
    findings = check_telemetry(_machine({}, outputs), effective=OFF)
    by = {f.check: f for f in findings}
    assert by["telemetry"].status == "ok"
    assert by["telemetry (jetvoice.service)"].status == "warn"
    assert "DO_NOT_TRACK=0" in by["telemetry (jetvoice.service)"].detail
    assert by["telemetry (vLLM container)"].status == "fail"
    assert "VLLM_NO_USAGE_STATS=<unset>" in by["telemetry (vLLM container)"].detail


def test_this_process_started_with_what_the_environment_gave_it() -> None:
    # The test run's own environment is what telemetry.INHERITED recorded before forcing.
    assert set(telemetry.INHERITED) <= SWITCH_NAMES
    assert {k: os.environ[k] for k in SWITCH_NAMES} == OFF
