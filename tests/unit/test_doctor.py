"""`jetvoice doctor` on this machine for cpu, and a clear failure list for a Jetson profile."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from models.store import ModelStore
from pipeline.cli import build_parser
from pipeline.ops import doctor
from pipeline.ops.doctor import Machine, check_certificate, check_clocks, report, run_checks


def _machine(
    arch: str = "x86_64", tegra: str | None = None, nvpmodel: str | None = None
) -> Machine:
    def run(argv: Sequence[str]) -> str | None:
        return nvpmodel if argv[0] == "nvpmodel" else None

    return Machine(
        python=(3, 11, 7),
        arch=arch,
        tegra_release=tegra,
        meminfo={"MemTotal": 16_000_000, "MemAvailable": 12_000_000},
        env={"HOME": "/nonexistent"},
        run=run,
    )


def _refused(url: str) -> object:
    raise ConnectionRefusedError(url)


def test_cpu_profile_passes_here_when_models_are_pulled() -> None:
    store = ModelStore.default()
    if store.verify("whisper-tiny.en", quick=True, progress=False):
        pytest.skip("cpu models not pulled")
    findings = run_checks("cpu", store, _machine(), get=_refused)
    by = {f.check: f for f in findings}
    assert by["python"].status == "ok"
    assert by["onnxruntime"].status == "ok" and "CPUExecutionProvider" in by["onnxruntime"].detail
    assert by["ctranslate2"].status == "ok"
    assert by["memory"].status == "ok"
    assert by["power mode"].status == "n/a"
    assert by["certificate"].status == "n/a"
    assert all(f.status != "fail" for f in findings), [f for f in findings if f.status == "fail"]
    out = io.StringIO()
    assert report(findings, "cpu", out) == 0


def test_a_jetson_profile_fails_here_with_a_list_of_reasons(tmp_path: Path) -> None:
    findings = run_checks("orin-nx", ModelStore(tmp_path), _machine(), get=_refused)
    failed = {f.check for f in findings if f.status == "fail"}
    assert {"platform", "onnxruntime", "ctranslate2", "llm server"} <= failed
    assert {"model whisper-small.en", "model qwen3-4b-w4a16", "model kokoro-v1.0-fp32"} <= failed
    out = io.StringIO()
    assert report(findings, "orin-nx", out) == 1
    text = out.getvalue()
    assert "fix:" in text and "check(s) failed" in text
    assert "CTranslate2 is CPU-only" in text


def test_the_doctor_command_is_registered_and_exits_nonzero_on_failure(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["doctor", "--profile", "orin-nano", "--models-dir", str(tmp_path)]
    )
    assert doctor.run_doctor(args, io.StringIO()) == 1
    bad = build_parser().parse_args(["doctor", "--profile", "nope"])
    assert doctor.run_doctor(bad, io.StringIO()) == 2


def test_llm_url_is_probed_and_the_served_name_checked(tmp_path: Path) -> None:
    from models.catalog import PROFILES

    answer = {"data": [{"id": "qwen3"}]}
    ok = doctor.check_llm_server(PROFILES["orin-nx"], None, lambda url: answer)
    assert ok.status == "ok" and "qwen3" in ok.detail
    wrong = doctor.check_llm_server(PROFILES["orin-nx"], None, lambda url: {"data": [{"id": "x"}]})
    assert wrong.status == "fail" and "--served-model-name qwen3" in wrong.fix


def test_power_mode_on_a_jetson() -> None:
    from models.catalog import PROFILES

    jetson = _machine("aarch64", "# R36 (release), REVISION: 4.3", "NV Power Mode: 25W\n1\n")
    finding = check_clocks(jetson, PROFILES["orin-nano"])
    assert finding.status == "fail" and "MAXN_SUPER" in finding.detail
    maxn = _machine("aarch64", "# R36 (release)", "NV Power Mode: MAXN_SUPER\n2\n")
    assert check_clocks(maxn, PROFILES["orin-nano"]).status == "ok"


def _cert(path: Path, days: int, start_days_ago: int = 1) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jetvoice test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=start_days_ago))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_certificate_checks(tmp_path: Path) -> None:
    assert check_certificate(tmp_path).status == "n/a"
    _cert(tmp_path / "server.crt", 365)
    assert check_certificate(tmp_path).status == "ok"
    _cert(tmp_path / "server.crt", 10)
    assert check_certificate(tmp_path).status == "warn"
    _cert(tmp_path / "server.crt", -1, start_days_ago=30)
    assert check_certificate(tmp_path).status == "fail"
    assert doctor.certs_dir({"JETVOICE_STATE_DIR": str(tmp_path)}) == tmp_path / "certs"


def test_a_managed_vllm_is_looked_for_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = doctor.check_managed_llm_program("vllm")
    assert missing.status == "fail" and "not on PATH" in missing.detail
    assert "--llm external" in missing.fix
    program = tmp_path / "vllm"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    found = doctor.check_managed_llm_program("vllm")
    assert found.status == "ok" and str(program) in found.detail
