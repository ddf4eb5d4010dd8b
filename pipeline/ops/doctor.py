"""`jetvoice doctor`: checks this machine against a profile and explains every failure.

Each check returns ok / warn / fail / n/a with one line of evidence and, when it is not ok, what
to do. The exit code is 1 when any check fails. Nothing here loads a model or starts a server;
the only network access is to the LLM URL (loopback by default) when one applies.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TextIO

from services import telemetry

Status = Literal["ok", "warn", "fail", "n/a"]
MIN_PYTHON = (3, 11)
TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEFAULT_LLM_URL = "http://127.0.0.1:8000/v1"


@dataclass(frozen=True)
class Finding:
    """The result of one check."""

    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Machine:
    """What the checks read from the machine; tests substitute every field."""

    python: tuple[int, int, int]
    arch: str
    tegra_release: str | None
    meminfo: Mapping[str, int]  # kB, as /proc/meminfo
    env: Mapping[str, str]  # as this process was started (before the telemetry switches)
    run: Callable[[Sequence[str]], str | None]  # stdout of a command, None if it cannot run

    @classmethod
    def this(cls) -> Machine:
        """The machine this process runs on."""
        try:
            tegra = TEGRA_RELEASE.read_text(errors="replace").strip() or None
        except OSError:
            tegra = None
        return cls(
            python=sys.version_info[:3],
            arch=platform.machine(),
            tegra_release=tegra,
            meminfo=read_meminfo(Path("/proc/meminfo")),
            env={
                **{k: v for k, v in os.environ.items() if k not in telemetry.SWITCH_NAMES},
                **telemetry.INHERITED,
            },
            run=_run,
        )

    @property
    def is_jetson(self) -> bool:
        """An aarch64 machine with an L4T release file."""
        return self.arch == "aarch64" and self.tegra_release is not None


def read_meminfo(path: Path) -> dict[str, int]:
    """/proc/meminfo as {field: kB}; empty when unreadable."""
    out: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            number = value.strip().split(" ")[0]
            if number.isdigit():
                out[key.strip()] = int(number)
    except OSError:
        pass
    return out


def _run(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


# --- the checks -------------------------------------------------------------------------------


def check_python(machine: Machine) -> Finding:
    """pipecat 1.14 needs Python >= 3.11 (JetPack 6 ships 3.10)."""
    version = ".".join(map(str, machine.python))
    if machine.python[:2] >= MIN_PYTHON:
        return Finding("python", "ok", f"{version} (>= 3.11)")
    return Finding(
        "python",
        "fail",
        f"{version}: pipecat-ai 1.14 needs >= 3.11",
        "install a uv-managed Python: `uv python install 3.12` (jetson/setup.sh does this)",
    )


def check_platform(machine: Machine, profile: str, board: str | None) -> Finding:
    """A Jetson profile needs a Jetson; other profiles run anywhere."""
    if board is None:
        return Finding("platform", "ok", f"{machine.arch}; profile {profile} runs on any machine")
    if machine.is_jetson:
        release = (machine.tegra_release or "").splitlines()[0]
        if "R36" not in release:
            return Finding(
                "platform",
                "fail",
                f"L4T {release}: profile {profile} is planned for JetPack 6 (L4T R36)",
            )
        return Finding("platform", "ok", f"Jetson, {release}")
    return Finding(
        "platform",
        "fail",
        f"profile {profile} is for a {board} (aarch64 with {TEGRA_RELEASE}); this machine is "
        f"{machine.arch} without it",
        "run this profile on the Jetson it is planned for, or use --profile cpu / gpu here",
    )


def check_onnxruntime(cuda: bool) -> Finding:
    """onnxruntime has the CUDA provider and really creates a session on it."""
    if importlib.util.find_spec("onnxruntime") is None:
        return Finding("onnxruntime", "fail", "not installed", "uv sync (or jetson/setup.sh)")
    import onnxruntime as ort

    providers = ort.get_available_providers()
    version = ort.__version__
    if not cuda:
        if "CPUExecutionProvider" in providers:
            return Finding("onnxruntime", "ok", f"{version}, CPUExecutionProvider")
        return Finding("onnxruntime", "fail", f"{version}: no CPUExecutionProvider ({providers})")
    if "CUDAExecutionProvider" not in providers:
        return Finding(
            "onnxruntime",
            "fail",
            f"{version} has no CUDAExecutionProvider ({', '.join(providers)}): Kokoro would "
            "run on the CPU",
            "install onnxruntime-gpu (x86: PyPI; Jetson: the Jetson AI Lab index, "
            "jetson/setup.sh) in place of onnxruntime",
        )
    # Listed is not loaded: a missing cuDNN/cuBLAS makes ORT fall back to the CPU with a warning.
    active = _ort_session_providers(ort)
    if active is None or "CUDAExecutionProvider" not in active:
        return Finding(
            "onnxruntime",
            "fail",
            f"{version} lists CUDAExecutionProvider but a session ran on {active}: the "
            "silent fall-back to CPU (CUDA/cuDNN libraries not loadable)",
            "check LD_LIBRARY_PATH and the CUDA/cuDNN versions the wheel was built for",
        )
    return Finding("onnxruntime", "ok", f"{version}, a session runs on CUDAExecutionProvider")


def _ort_session_providers(ort: object) -> list[str] | None:
    spec = importlib.util.find_spec("pipecat")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        model = Path(root) / "audio" / "vad" / "data" / "silero_vad.onnx"
        if model.is_file():
            try:
                session = ort.InferenceSession(  # type: ignore[attr-defined]
                    str(model), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
                )
                return list(session.get_providers())
            except Exception:  # noqa: BLE001 - any failure means "not on CUDA", reported as such
                return None
    return None


def check_ctranslate2(cuda: bool) -> Finding:
    """CTranslate2 (faster-whisper) sees a CUDA device when the profile needs one."""
    if importlib.util.find_spec("ctranslate2") is None:
        return Finding("ctranslate2", "fail", "not installed", "uv sync")
    import ctranslate2

    count = ctranslate2.get_cuda_device_count()
    version = ctranslate2.__version__
    if not cuda:
        return Finding(
            "ctranslate2", "ok", f"{version}, {count} CUDA devices (cpu profile: none needed)"
        )
    if count < 1:
        return Finding(
            "ctranslate2",
            "fail",
            f"{version} sees 0 CUDA devices: Whisper would run on the CPU (PyPI's aarch64 "
            "CTranslate2 is CPU-only)",
            "install a CUDA build of CTranslate2 (on JetPack 6 a source build: "
            "jetson/setup.sh --build-ctranslate2)",
        )
    return Finding("ctranslate2", "ok", f"{version}, {count} CUDA device(s)")


def _assignments(items: Iterable[str]) -> dict[str, str]:
    """``NAME=value`` strings as a mapping."""
    env = {}
    for item in items:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def _switches(found: Sequence[tuple[telemetry.Switch, str]]) -> str:
    return ", ".join(f"{switch.name}={value} ({switch.library})" for switch, value in found)


def check_telemetry(machine: Machine, effective: Mapping[str, str] | None = None) -> list[Finding]:
    """Every dependency's telemetry switch is off: in this process (jetvoice forces them), in
    the environment the user gave it, in the jetvoice unit and in vLLM's container (which does
    not run jetvoice's code, so there an unset switch is on)."""
    names = ", ".join(s.name for s in telemetry.SWITCHES)
    forced = telemetry.turned_on(os.environ if effective is None else effective, unset_is_on=True)
    if forced:
        return [
            Finding(
                "telemetry",
                "fail",
                f"on in this process: {_switches(forced)}",
                "import services.telemetry before anything else (the package __init__ does)",
            )
        ]
    findings = []
    tried = telemetry.turned_on(machine.env)
    if tried:
        findings.append(
            Finding(
                "telemetry",
                "warn",
                f"your environment turns on {_switches(tried)}; jetvoice forces every switch off",
                "remove it from the shell profile, unit or .env file that sets it",
            )
        )
    else:
        findings.append(Finding("telemetry", "ok", f"off, forced by jetvoice: {names}"))
    unit = machine.run(["systemctl", "show", "jetvoice.service", "--property=Environment"])
    if unit and unit.strip() != "Environment=":
        assignments = shlex.split(unit.strip().removeprefix("Environment="))
        tried = telemetry.turned_on(_assignments(assignments))
        findings.append(
            Finding(
                "telemetry (jetvoice.service)",
                "warn" if tried else "ok",
                f"the unit turns on {_switches(tried)}; jetvoice forces every switch off"
                if tried
                else "the unit turns no switch on",
                "remove it from the unit (`systemctl cat jetvoice`) and its drop-ins",
            )
        )
    container = machine.run(
        ["docker", "inspect", "--format", "{{json .Config.Env}}", "jetvoice-vllm"]
    )
    if container:
        try:
            env = _assignments(str(a) for a in json.loads(container))
        except (ValueError, TypeError):
            env = {}
        left_on = telemetry.turned_on(env, unset_is_on=True)
        findings.append(
            Finding(
                "telemetry (vLLM container)",
                "fail" if left_on else "ok",
                f"on in the container: {_switches(left_on)}" if left_on else f"off: {names}",
                "recreate it from jetson/compose.yaml: sudo systemctl restart jetvoice-vllm",
            )
        )
    return findings


def check_memory(machine: Machine, profile: object) -> Finding:
    """Total memory against the profile's budget, and what is free now."""
    budget = getattr(profile, "budget", None)
    if budget is None:
        return Finding("memory", "n/a", "the profile has no budget")
    total_mib = machine.meminfo.get("MemTotal", 0) // 1024
    free_mib = machine.meminfo.get("MemAvailable", 0) // 1024
    if not budget.unified:
        out = machine.run(
            ["nvidia-smi", "--query-gpu=memory.total,memory.free", "--format=csv,noheader,nounits"]
        )
        if out is None:
            return Finding(
                "memory",
                "fail",
                f"the budget is {budget.total:,} MiB of GPU memory; no NVIDIA GPU found "
                "(nvidia-smi missing or failing)",
                "install the NVIDIA driver, or use --profile cpu",
            )
        gpu_total, gpu_free = (int(v) for v in out.splitlines()[0].split(","))
        total_mib, free_mib = gpu_total, gpu_free
    # A Jetson shows a little less than its nominal RAM (carve-outs): allow 10 %.
    if total_mib < budget.total * 0.9:
        return Finding(
            "memory",
            "fail",
            f"{total_mib:,} MiB total, the budget plans {budget.total:,} MiB",
            "use the profile for this machine's memory",
        )
    settings = getattr(profile, "vllm", None)
    need = budget.total - budget.headroom(settings) - budget.system
    detail = f"{total_mib:,} MiB total, {free_mib:,} MiB available; the profile needs ~{need:,} MiB"
    if free_mib < need:
        return Finding(
            "memory",
            "warn",
            detail + " (less is free now: fine if the LLM server already runs)",
            "stop other services or go headless (`sudo systemctl set-default multi-user.target`)",
        )
    return Finding("memory", "ok", detail)


def check_models(profile_name: str, store: object) -> list[Finding]:
    """Every model present with the catalog's sizes (quick), and whether its sha256 was checked."""
    from models.store import ModelStore

    assert isinstance(store, ModelStore)
    findings = []
    model_ids = store.catalog.profile(profile_name).model_ids()
    for model_id in dict.fromkeys(model_ids):
        model = store.model(model_id)
        problems = store.verify(model_id, quick=True, progress=False)
        if problems and all(p.kind == "unpinned" for p in problems):
            findings.append(
                Finding(
                    f"model {model_id}",
                    "fail",
                    f"not pinned ({', '.join(p.file for p in problems)}): models/hub.lock.json "
                    "has no entry, so these files cannot be verified",
                    "on a connected machine: jetvoice models pull, jetvoice models lock, commit "
                    "models/hub.lock.json; then pack/unpack",
                )
            )
        elif problems:
            findings.append(
                Finding(
                    f"model {model_id}",
                    "fail",
                    "; ".join(str(p) for p in problems[:3])
                    + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""),
                    f"jetvoice models pull --profile {profile_name} (or `jetvoice models unpack`)",
                )
            )
        elif all(store.is_verified(model_id, f) for f in model.files):
            findings.append(Finding(f"model {model_id}", "ok", "present, sha256 verified"))
        else:
            findings.append(
                Finding(
                    f"model {model_id}",
                    "warn",
                    "present with the right sizes; sha256 not checked yet",
                    f"jetvoice models verify --profile {profile_name}",
                )
            )
    return findings


def check_llm_server(profile: object, url: str | None, get: Callable[[str], object]) -> Finding:
    """The LLM server answers (a URL applies), or its program is installed (managed)."""
    runtime = getattr(profile, "llm_runtime", "llamacpp")
    target = url or getattr(profile, "llm_url", None)
    if target:
        models_url = target.rstrip("/") + "/models"
        try:
            answer = get(models_url)
        except Exception as exc:  # noqa: BLE001 - every failure to answer is the finding
            how = (
                "start it: `sudo systemctl start jetvoice-vllm` (jetson/)"
                if runtime == "vllm-container"
                else "start the server or fix --llm-url"
            )
            return Finding("llm server", "fail", f"{models_url}: {type(exc).__name__}: {exc}", how)
        served = getattr(profile, "served_model_name", None)
        ids = _model_ids(answer)
        if served and url is None and served not in ids:
            return Finding(
                "llm server",
                "fail",
                f"{models_url} answers but serves {ids}, not {served!r}",
                f"start vLLM with --served-model-name {served}",
            )
        return Finding("llm server", "ok", f"{models_url} answers: {', '.join(ids) or 'no models'}")
    return check_managed_llm_program(runtime)


def check_managed_llm_program(runtime: str) -> Finding:
    """The program `jetvoice serve` starts for a managed LLM server is there."""
    if runtime == "llamacpp":
        if importlib.util.find_spec("llama_cpp") is None:
            return Finding(
                "llm server", "fail", "llama_cpp.server is not installed", "uv sync --extra cpu"
            )
        return Finding(
            "llm server", "ok", "llama_cpp.server installed (started by `jetvoice serve`)"
        )
    # `jetvoice serve` starts the `vllm` program found on PATH (services.llm_server): vLLM and
    # its torch live in an environment of their own, not in the agent's.
    program = shutil.which("vllm")
    if program is None:
        return Finding(
            "llm server",
            "fail",
            "`vllm` is not on PATH",
            "install vLLM for this GPU in its own environment (python -m venv ~/vllm && "
            "~/vllm/bin/pip install vllm) and put ~/vllm/bin on PATH; or serve it elsewhere and "
            "pass --llm external --llm-url http://HOST:PORT/v1",
        )
    return Finding("llm server", "ok", f"{program} (started by `jetvoice serve`)")


def _model_ids(answer: object) -> list[str]:
    data = answer.get("data", []) if isinstance(answer, dict) else []
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


def _http_get_json(url: str) -> object:
    import httpx

    response = httpx.get(url, timeout=3.0, trust_env=False)
    response.raise_for_status()
    return response.json()


def certs_dir(env: Mapping[str, str]) -> Path:
    """Where `jetvoice certs` writes: $JETVOICE_STATE_DIR, else $XDG_DATA_HOME/jetvoice, else
    ~/.local/share/jetvoice; then certs/."""
    if env.get("JETVOICE_STATE_DIR"):
        base = Path(env["JETVOICE_STATE_DIR"]).expanduser()
    elif env.get("XDG_DATA_HOME"):
        base = Path(env["XDG_DATA_HOME"]).expanduser() / "jetvoice"
    else:
        base = Path(env.get("HOME", str(Path.home()))) / ".local" / "share" / "jetvoice"
    return base / "certs"


def check_certificate(directory: Path, now: datetime | None = None) -> Finding:
    """The LAN certificate, if there is one: parseable, valid now, not about to expire."""
    certs = [p for p in (directory / "server.crt", directory / "ca.crt") if p.is_file()]
    if not certs:
        return Finding(
            "certificate",
            "n/a",
            f"none in {directory}: the page is served over plain HTTP (the microphone then works "
            "only on this machine)",
            "jetvoice certs (for phones on the LAN)",
        )
    from cryptography import x509

    moment = now or datetime.now(UTC)
    worst: Finding | None = None
    for path in certs:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError as exc:
            return Finding("certificate", "fail", f"{path}: not a PEM certificate ({exc})")
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if moment < start or moment > end:
            return Finding(
                "certificate",
                "fail",
                f"{path.name} valid {start:%Y-%m-%d} to {end:%Y-%m-%d}; now is outside",
                "jetvoice certs (make a new one)",
            )
        if end - moment < timedelta(days=30) and worst is None:
            worst = Finding(
                "certificate", "warn", f"{path.name} expires {end:%Y-%m-%d}", "jetvoice certs"
            )
    return worst or Finding(
        "certificate", "ok", f"{', '.join(p.name for p in certs)} valid now ({directory})"
    )


def check_clocks(machine: Machine, profile: object) -> Finding:
    """On a Jetson, the nvpmodel mode the profile plans (by name: IDs differ per board)."""
    wanted = getattr(profile, "power_mode", None)
    if not machine.is_jetson:
        return Finding("power mode", "n/a", f"not a Jetson ({machine.arch})")
    if wanted is None:
        return Finding("power mode", "n/a", "the profile sets no power mode")
    out = machine.run(["nvpmodel", "-q"])
    if out is None:
        return Finding("power mode", "fail", "nvpmodel -q failed", "sudo jetson/power.sh apply")
    match = re.search(r"NV Power Mode:\s*(\S+)", out)
    mode = match.group(1) if match else out.strip().splitlines()[0]
    if mode == wanted or (wanted == "MAXN" and mode.startswith("MAXN")):
        return Finding("power mode", "ok", f"{mode}")
    return Finding(
        "power mode",
        "fail",
        f"{mode}, the profile plans {wanted}",
        f"sudo jetson/power.sh apply --mode {wanted} (or the jetvoice-power unit)",
    )


def check_kv_shape(profile: object, store: object) -> Finding:
    """The budget's KV-cache arithmetic uses the pulled model's own config.json."""
    from models.catalog import KV_SHAPES
    from models.store import ModelStore

    assert isinstance(store, ModelStore)
    llm = getattr(profile, "llm", "")
    shape = KV_SHAPES.get(llm)
    if shape is None:
        return Finding("kv budget", "n/a", "no vLLM model in this profile")
    config = store.path(llm) / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return Finding("kv budget", "n/a", f"{config} not there yet")
    found = (data.get("num_hidden_layers"), data.get("num_key_value_heads"), data.get("head_dim"))
    planned = (shape.layers, shape.kv_heads, shape.head_dim)
    if found != planned:
        return Finding(
            "kv budget",
            "fail",
            f"config.json has layers/kv heads/head dim {found}, the budget assumed {planned}",
            "fix KV_SHAPES in models/catalog.py and the profile's kv_cache",
        )
    return Finding("kv budget", "ok", f"{shape.bytes_per_token:,} B/token as planned")


# --- running ------------------------------------------------------------------------------------


def run_checks(
    profile_name: str,
    store: object,
    machine: Machine,
    *,
    llm_url: str | None = None,
    get: Callable[[str], object] = _http_get_json,
) -> list[Finding]:
    """Every check for ``profile_name`` on ``machine``, in a fixed order."""
    from models.store import ModelStore

    assert isinstance(store, ModelStore)
    profile = store.catalog.profile(profile_name)
    cuda = profile.device == "cuda"
    findings = [
        check_python(machine),
        check_platform(machine, profile.name, profile.board),
        *check_telemetry(machine),
        check_onnxruntime(cuda),
        check_ctranslate2(cuda),
        check_memory(machine, profile),
        *check_models(profile.name, store),
        check_kv_shape(profile, store),
        check_llm_server(profile, llm_url, get),
        check_certificate(certs_dir(machine.env)),
        check_clocks(machine, profile),
    ]
    return findings


def report(findings: Sequence[Finding], profile: str, out: TextIO) -> int:
    """Print the findings; 1 when any failed, else 0."""
    print(f"jetvoice doctor: profile {profile}", file=out)
    for f in findings:
        print(f"  {f.status:<4}  {f.check:<32} {f.detail}", file=out)
        if f.fix and f.status in ("fail", "warn"):
            print(f"        {'':<32} fix: {f.fix}", file=out)
    failed = [f for f in findings if f.status == "fail"]
    warned = sum(f.status == "warn" for f in findings)
    if failed:
        print(f"{len(failed)} check(s) failed, {warned} warning(s)", file=out)
        return 1
    print(f"all checks passed ({warned} warning(s))", file=out)
    return 0


def add_doctor_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `doctor`."""
    parser = subparsers.add_parser(
        "doctor",
        help="check this machine against a profile; exit code 1 on any failure",
        description=__doc__,
    )
    parser.add_argument("--profile", default="cpu", help="profile to check (default: cpu)")
    parser.add_argument(
        "--models-dir", type=Path, default=None, help="where weights live (default: models/weights)"
    )
    parser.add_argument(
        "--llm-url",
        default=None,
        help="OpenAI-compatible base URL (…/v1) to probe (default: the profile's, if any)",
    )
    return parser


def run_doctor(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the parsed `doctor` command."""
    from models.store import ModelStore, default_models_dir

    stream = out or sys.stdout
    store = ModelStore(args.models_dir or default_models_dir())
    try:
        store.catalog.profile(args.profile)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    findings = run_checks(args.profile, store, Machine.this(), llm_url=args.llm_url)
    return report(findings, args.profile, stream)
