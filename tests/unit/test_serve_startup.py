"""`jetvoice serve` start-up checks: no plain HTTP off loopback, TLS flags, the server config.

Nothing here binds a socket: the refusal happens before the server (or any model) starts.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.store import ModelStore, default_models_dir
from pipeline.cli import build_parser, main
from pipeline.profiles import (
    InsecureBindError,
    build_agent_config,
    build_server_config,
    check_bind_security,
    public_urls,
)
from pipeline.server.lan_addresses import LocalNames
from pipeline.server.pairing import token_path

REPO = Path(__file__).resolve().parents[2]
NAMES = LocalNames(
    hostname="box",
    lan_addresses=(ipaddress.ip_address("192.168.1.23"), ipaddress.ip_address("fd00::23")),
)


def _serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.23", "box.local"])
def test_plain_http_off_loopback_is_refused(host: str) -> None:
    with pytest.raises(InsecureBindError) as refused:
        check_bind_security(host, tls=False)
    message = str(refused.value)
    assert "jetvoice certs" in message and "--tls" in message
    check_bind_security(host, tls=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_plain_http_on_loopback_is_fine(host: str) -> None:
    check_bind_security(host, tls=False)


def test_cli_exits_2_with_the_fix_in_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path / "state")])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to serve plain HTTP on 0.0.0.0" in err
    assert "jetvoice certs" in err and "--tls" in err
    # Refused before anything was written: no token, no certificate.
    assert not (tmp_path / "state").exists()


def test_console_script_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "JETVOICE_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to serve plain HTTP on 0.0.0.0" in result.stderr
    assert "jetvoice certs" in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--certfile", "a.crt"], "--certfile and --keyfile go together"),
        (["--tls", "--certfile", "a.crt", "--keyfile", "a.key"], "--tls uses jetvoice's own"),
        (["--max-sessions", "0"], "--max-sessions must be at least 1"),
        (["--max-guests", "-1"], "--max-guests must be 0 or more"),
    ],
)
def test_bad_tls_flags(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_server_config(_serve_args(*argv), tmp_path, NAMES)


def test_lan_server_with_tls(tmp_path: Path) -> None:
    server, report = build_server_config(
        _serve_args("--host", "0.0.0.0", "--tls", "--port", "9443"), tmp_path, NAMES
    )
    assert report is not None and report.ca_created
    assert server.tls_certfile == report.paths.server_cert
    assert server.tls_ca_certfile == report.paths.ca_cert
    assert server.require_token
    assert server.pairing_token == token_path(tmp_path).read_text().strip()
    # 0.0.0.0 is IPv4 only: no IPv6 URL.
    assert server.public_urls == ("https://192.168.1.23:9443/", "https://box.local:9443/")
    assert server.pairing_token not in repr(server)


def test_loopback_server_token_is_optional_unless_required(tmp_path: Path) -> None:
    server, report = build_server_config(_serve_args(), tmp_path, NAMES)
    assert report is None and not server.require_token and server.pairing_token
    assert server.public_urls == ("http://127.0.0.1:8430/",)
    required, _ = build_server_config(_serve_args("--require-token"), tmp_path, NAMES)
    assert required.require_token
    assert required.pairing_token == server.pairing_token  # persisted
    rotated, _ = build_server_config(_serve_args("--new-token"), tmp_path, NAMES)
    assert rotated.pairing_token != server.pairing_token


def test_public_urls() -> None:
    assert public_urls("::", 1, "https", NAMES) == (
        "https://192.168.1.23:1/",
        "https://[fd00::23]:1/",
        "https://box.local:1/",
    )
    assert public_urls("192.168.1.23", 1, "https", NAMES) == ("https://192.168.1.23:1/",)
    assert public_urls("0.0.0.0", 1, "https", LocalNames("box", ())) == ("https://box.local:1/",)


@pytest.mark.parametrize(
    ("pipeline", "model_nice", "llm_nice"), [("tuned", 10, 19), ("stock", 0, 0)]
)
def test_the_llm_server_runs_below_the_models_only_in_the_tuned_pipeline(
    pipeline: str, model_nice: int, llm_nice: int
) -> None:
    config = build_agent_config(
        _serve_args("--pipeline", pipeline), ModelStore(default_models_dir())
    )
    assert (config.compute_nice, config.llm.cpu_nice) == (model_nice, llm_nice)


def test_the_llm_temperature_is_a_flag_and_a_negative_one_is_refused() -> None:
    store = ModelStore(default_models_dir())
    assert build_agent_config(_serve_args(), store).llm.temperature == 0.6
    assert build_agent_config(_serve_args("--llm-temperature", "0"), store).llm.temperature == 0
    with pytest.raises(ValueError, match="--llm-temperature must be 0 or more"):
        build_agent_config(_serve_args("--llm-temperature", "-0.5"), store)


def test_vllm_takes_a_checkpoint_directory_and_its_server_flags(tmp_path: Path) -> None:
    store = ModelStore(default_models_dir())
    # The cpu profile's LLM is a GGUF: vLLM is refused with the fix, before anything starts.
    with pytest.raises(ValueError, match="--llm-weights DIR"):
        build_agent_config(_serve_args("--llm", "vllm"), store)
    with pytest.raises(ValueError, match="is not one"):
        build_agent_config(_serve_args("--llm", "vllm", "--llm-weights", str(tmp_path)), store)
    (tmp_path / "config.json").write_text("{}")
    config = build_agent_config(
        _serve_args(
            "--llm",
            "vllm",
            "--llm-weights",
            str(tmp_path),
            "--llm-server-arg=--chat-template=t.jinja",
            "--llm-server-arg=--dtype=bfloat16",
            "--llm-start-timeout",
            "900",
        ),
        store,
    )
    assert config.llm.server == "vllm" and config.llm.model_path == tmp_path
    assert config.llm.extra_server_args == ("--chat-template=t.jinja", "--dtype=bfloat16")
    assert config.llm.start_timeout_secs == 900
    with pytest.raises(ValueError, match="--llm-start-timeout must be more than 0"):
        build_agent_config(_serve_args("--llm-start-timeout", "0"), store)
    # llama.cpp reads one file, not a directory.
    with pytest.raises(ValueError, match="needs a GGUF file"):
        build_agent_config(_serve_args("--llm-weights", str(tmp_path)), store)
