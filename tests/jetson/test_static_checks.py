"""Everything about jetson/ that can be checked without a Jetson.

shellcheck on every script, `docker compose config` on the compose file with each profile's env
file, `systemd-analyze verify` on the rendered units, the env files against the catalog, and the
set-up and power scripts' dry runs. A missing tool skips its test, unless
JETVOICE_REQUIRE_TOOLS=1 (set by `just check-jetson`, which installs the tools) makes it a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from models.catalog import PROFILES
from models.deploy import ENV_DIR, compose_env, container_profiles

ROOT = Path(__file__).resolve().parents[2]
JETSON = ROOT / "jetson"
FIXTURES = Path(__file__).parent / "fixtures"
SCRIPTS = sorted(JETSON.rglob("*.sh"))
JETSON_PROFILES = [p.name for p in container_profiles()]


def _tool(name: str, *probe: str) -> str:
    path = shutil.which(name)
    ok = path is not None
    if ok and probe:
        ok = subprocess.run([name, *probe], capture_output=True, check=False).returncode == 0
    if not ok:
        if os.environ.get("JETVOICE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} {' '.join(probe)} is required (just check-jetson installs it)")
        pytest.skip(f"{name} {' '.join(probe)} not available")
    assert path is not None
    return path


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_there_are_scripts_and_three_jetson_profiles() -> None:
    assert {p.name for p in SCRIPTS} >= {"setup.sh", "power.sh"}
    assert JETSON_PROFILES == ["orin-nano", "orin-nx", "agx-orin"]


def test_env_files_are_generated_from_the_catalog() -> None:
    for profile in container_profiles():
        path = ENV_DIR / f"{profile.name}.env"
        assert path.read_text() == compose_env(profile), f"run `python -m models.deploy` ({path})"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    shellcheck = _tool("shellcheck", "--version")
    result = _run(shellcheck, "-x", "--severity=style", script)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("profile", JETSON_PROFILES)
def test_compose_config(profile: str, tmp_path: Path) -> None:
    docker = _tool("docker", "compose", "version")
    env = dict(os.environ, JETVOICE_MODELS_DIR=str(tmp_path))
    result = _run(
        docker,
        "compose",
        "--file",
        JETSON / "compose.yaml",
        "--env-file",
        ENV_DIR / f"{profile}.env",
        "config",
        "--format",
        "json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    settings = PROFILES[profile].vllm
    assert settings is not None
    service = json.loads(result.stdout)["services"]["vllm"]
    command = " ".join(service["command"])
    assert f"--gpu-memory-utilization {settings.gpu_memory_utilization:.2f}" in command
    assert f"--max-model-len {settings.max_model_len}" in command
    assert f"--max-num-seqs {settings.max_num_seqs}" in command
    assert "--enable-prefix-caching" in command and "--tool-call-parser hermes" in command
    assert ("--enforce-eager" in command) == settings.enforce_eager
    assert "--host 127.0.0.1" in command, "vLLM stays on loopback"
    assert service["runtime"] == "nvidia" and service["network_mode"] == "host"
    sources = [v["source"] for v in service["volumes"]]
    assert f"{tmp_path}/{PROFILES[profile].llm}" in sources


@pytest.mark.parametrize("profile", JETSON_PROFILES)
def test_systemd_units_verify(profile: str, tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze", "--version")
    units = tmp_path / "units"
    rendered = _run("bash", JETSON / "setup.sh", "--profile", profile, "--render-units", units)
    assert rendered.returncode == 0, rendered.stderr
    # Docker's own unit is not installed here; a stand-in lets Requires=docker.service resolve.
    (units / "docker.service").write_text(
        "[Unit]\nDescription=stand-in for Docker's unit\n[Service]\nExecStart=/bin/true\n"
    )
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:")
    ours = sorted(units.glob("jetvoice*.service"))
    assert [u.name for u in ours] == [
        "jetvoice-power.service",
        "jetvoice-vllm.service",
        "jetvoice.service",
    ]
    result = _run(analyze, "verify", *ours, env=env)
    # verify exits 0 on settings it ignores, so any message at all is a failure.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
    text = "\n".join(u.read_text() for u in ours)
    assert not re.search(r"@[A-Z_]+@", text), "unrendered placeholder"
    assert text.count("Restart=on-failure") == 2
    assert f"--profile {profile}" in text


def test_setup_dry_run_is_a_plan_that_changes_nothing() -> None:
    first = _run("bash", JETSON / "setup.sh", "--profile", "orin-nx", "--dry-run")
    assert first.returncode == 0, first.stderr
    assert "pypi.jetson-ai-lab.io/jp6/cu126" in first.stdout
    assert "--index-url" in first.stdout and "--extra-index-url" not in first.stdout
    assert "power.sh apply --mode MAXN" in first.stdout
    for line in first.stdout.splitlines():
        assert not line.startswith("   run: "), f"a dry run ran something: {line}"


def test_setup_refuses_to_change_a_machine_that_is_not_a_jetson() -> None:
    result = _run("bash", JETSON / "setup.sh", "--profile", "orin-nx")
    if Path("/etc/nv_tegra_release").exists():
        pytest.skip("this is a Jetson")
    assert result.returncode == 2
    assert "not a Jetson" in result.stderr


def test_setup_rejects_a_profile_without_a_container() -> None:
    result = _run("bash", JETSON / "setup.sh", "--profile", "cpu", "--dry-run")
    assert result.returncode == 2 and "does not run on a Jetson" in result.stderr


def test_power_mode_is_found_by_name_not_id() -> None:
    conf = FIXTURES / "nvpmodel-orin-nano-super.conf"
    result = _run(
        "bash", JETSON / "power.sh", "apply", "--mode", "MAXN_SUPER", "--conf", conf, "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert "nvpmodel -m 2" in result.stdout and "jetson_clocks" in result.stdout
    missing = _run(
        "bash", JETSON / "power.sh", "apply", "--mode", "MAXN", "--conf", conf, "--dry-run"
    )
    assert missing.returncode == 2 and "MAXN_SUPER" in missing.stderr
