"""Break each RELIABILITY row on purpose and check that its tests notice (`just break-check`).

For every row of RELIABILITY.md there is at least one small deliberate break of the product code
(one exact text substitution in one file: the SDP validation skipped, the body cap raised, the
rate limiter off...) and the tests that guard the row. Each break is applied to a copy of the
working tree in a temporary directory (the virtual environment and the model weights are linked,
the speech fixtures in tests/fixtures are copied with the tree), the row's tests run there with
pytest, and they must FAIL; the copy is removed at the end, also on Ctrl-C, and the real
working tree is never written. A break whose text is no longer in its file is reported, not
skipped silently. With ``--baseline`` each break's tests first run unbroken in the same copy
and must pass there, so a failure is the break's doing and not the copy's.

    uv run --no-sync python scripts/break_check.py                  # every row
    uv run --no-sync python scripts/break_check.py --rows 1,2,7     # some rows
    uv run --no-sync python scripts/break_check.py --list           # what would run
    uv run --no-sync python scripts/break_check.py --baseline ...   # the tests pass unbroken

Prints one table row per break (| row | break | test | result |) and writes the results to
artifacts/break_check.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACT = REPO / "artifacts" / "break_check.json"
# Linked into the copy, not copied: large, and never broken.
LINKED = (".venv", "models/weights")
NOT_COPIED = {".git", "artifacts", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}
# The soak row runs a short soak: enough sessions to see a leak of megabytes per session.
# Lines of each run's pytest output kept in the results file.
LOG_TAIL_LINES = 15
SHORT_SOAK = {"JETVOICE_SOAK_CYCLES": "30", "JETVOICE_SOAK_WARM_UP": "10"}

E2E_VOICE = "tests/e2e/test_voice_loop.py::test_spoken_question_gets_a_spoken_answer"
LIFECYCLE = "tests/e2e/test_lifecycle.py::"
SYSCALL_AUDIT = "tests/e2e/test_syscall_audit.py"
FOREIGN_DATAGRAM = "tests/e2e/test_foreign_datagram.py"
ACCESS = "tests/unit/test_access_control.py::"


@dataclass(frozen=True)
class Break:
    """One deliberate fault: replace ``old`` (exactly once) by ``new`` in ``path``."""

    row: int
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    pytest_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: int = 900


BREAKS: tuple[Break, ...] = (
    Break(
        1,
        "SDP offers reach aiortc unvalidated",
        "pipeline/sessions/manager.py",
        "        check_offer(sdp)\n",
        "        pass\n",
        ("tests/loopback/test_hostile_sdp.py::test_named_hostile_offers_get_an_exact_400",),
    ),
    Break(
        2,
        "body cap raised to 1 GiB",
        "pipeline/server/access.py",
        "cap = self.policy.max_body_bytes",
        "cap = 1 << 30",
        (ACCESS + "test_oversized_body_is_413_before_parsing",),
    ),
    Break(
        2,
        "no timeout on a slow body",
        "pipeline/server/access.py",
        "async with asyncio.timeout(self.policy.body_timeout_secs):",
        "async with asyncio.timeout(None):",
        (ACCESS + "test_slow_body_times_out_with_408",),
    ),
    Break(
        3,
        "offer rate limiter off",
        "pipeline/server/access.py",
        "            if wait > 0:\n",
        "            if False:\n",
        (ACCESS + "test_offer_flood_gets_429_with_retry_after",),
    ),
    Break(
        3,
        "offers being answered not counted against max_sessions",
        "pipeline/sessions/manager.py",
        "if self.active + self._reserved >= self._runtime.config.server.max_sessions:",
        "if self.active >= self._runtime.config.server.max_sessions:",
        (ACCESS + "test_concurrent_offers_over_max_sessions_get_503_and_allocate_nothing",),
    ),
    Break(
        4,
        "foreign Origin accepted",
        "pipeline/server/access.py",
        "if origin is not None and not same_origin(origin, scope):",
        "if False:",
        (ACCESS + "test_foreign_origin_is_403",),
    ),
    Break(
        4,
        "any token accepted",
        "pipeline/server/access.py",
        "        if policy.token is not None and token_matches(token, policy.token):\n"
        '            return "paired"\n',
        '        if True:\n            return "paired"\n',
        (ACCESS + "test_api_with_wrong_token_is_403",),
    ),
    Break(
        4,
        "refusal log line carries the query string (?token=)",
        "pipeline/server/access.py",
        "f\"refused {scope['method']} {scope['path']} from \"",
        "f\"refused {scope['method']} {scope['path']}?{scope['query_string'].decode()} from \"",
        (ACCESS + "test_the_token_never_reaches_the_logs",),
    ),
    Break(
        5,
        "plain HTTP allowed on a LAN address",
        "pipeline/profiles.py",
        "    if tls or is_loopback_host(host):\n",
        "    if True:\n",
        ("tests/unit/test_serve_startup.py",),
    ),
    Break(
        5,
        "server certificate without the LAN IP addresses",
        "pipeline/server/certs.py",
        "alt_names += [x509.IPAddress(a) for a in ip_addresses]",
        "alt_names += []",
        ("tests/unit/test_certs.py::test_server_certificate_names_every_address_and_name",),
    ),
    Break(
        6,
        "ICE gathers on every interface and talks to anyone (no policy on the loopback bind)",
        "pipeline/server/app.py",
        "own_machine_ice() if is_loopback_host(runtime.config.server.host) else nullcontext()",
        "nullcontext()",
        (E2E_VOICE, FOREIGN_DATAGRAM),
    ),
    Break(
        6,
        "the loopback bind's ICE answers datagrams from other machines",
        "pipeline/webrtc/ice_policy.py",
        '_restricted_ice("own-machine", _own_host_addresses, is_own_address)',
        '_restricted_ice("own-machine", _own_host_addresses, lambda _host: True)',
        (FOREIGN_DATAGRAM, "tests/unit/test_ice_policy.py"),
    ),
    Break(
        6,
        "a public STUN server configured",
        "pipeline/sessions/manager.py",
        "PeerRequestHandler(ice_servers=[])",
        'PeerRequestHandler(ice_servers=["stun:stun.l.google.com:19302"])',
        (E2E_VOICE,),
    ),
    Break(
        6,
        "onnxruntime's telemetry back on (it looks up a Microsoft collector from native code)",
        "services/telemetry.py",
        'Switch("ORT_DISABLE_TELEMETRY", "1",',
        'Switch("ORT_DISABLE_TELEMETRY", "0",',
        (SYSCALL_AUDIT,),
    ),
    Break(
        7,
        "aiortc's stock jitter buffer (stalls 280 ms after a lost packet)",
        "pipeline/webrtc/jitter.py",
        "            replace_jitter_buffer(transceiver.receiver, buffer)\n",
        "            pass\n",
        ("tests/unit/test_jitter.py", "tests/integration/test_packet_loss.py"),
    ),
    Break(
        8,
        "peer watchdog never gives a silent peer up",
        "pipeline/sessions/liveness.py",
        "reason = liveness.verdict(self._connection, time.monotonic())",
        "reason = None",
        (LIFECYCLE + "test_a_vanished_peer_ends_its_session_and_frees_it",),
    ),
    Break(
        9,
        "a renegotiated peer's old pc_id is kept",
        "pipeline/sessions/manager.py",
        '        if answer is not None and request.pc_id and request.pc_id != answer["pc_id"]:\n'
        "            self.peers.pop(request.pc_id, None)\n",
        '        if answer is not None and request.pc_id and request.pc_id != answer["pc_id"]:\n'
        "            pass\n",
        ("tests/loopback/test_reconnect.py",),
    ),
    Break(
        10,
        "SIGTERM not mapped to the clean Ctrl-C shutdown",
        "pipeline/cli.py",
        "    signal.signal(signal.SIGTERM, signal.default_int_handler)\n",
        "    pass\n",
        (LIFECYCLE + "test_sigterm_mid_answer_exits_cleanly",),
    ),
    Break(
        11,
        "no LLM request timeout",
        "services/llm.py",
        "timeout = Timeout(self._request_timeout_secs, connect=2.0)",
        "timeout = Timeout(None, connect=2.0)",
        ("tests/e2e/test_llm_faults.py",),
        timeout_s=1200,
    ),
    Break(
        12,
        "failure responder never apologises",
        "pipeline/ops/fallback.py",
        "apology = APOLOGIES.get(stage)",
        "apology = None",
        ("tests/unit/test_service_failures.py",),
    ),
    Break(
        13,
        "no garbage collection or malloc_trim after a session",
        "pipeline/sessions/manager.py",
        "                collect_session_garbage()\n"
        "                await asyncio.to_thread(release_free_memory)\n",
        "                pass\n",
        ("tests/soak",),
        pytest_args=("--soak",),
        env=SHORT_SOAK,
        timeout_s=1800,
    ),
    Break(
        13,
        "an ended session forgotten only after its memory was released",
        "pipeline/sessions/manager.py",
        "            self._forget(task)\n            del session, party\n",
        "",
        ("tests/unit/test_session_memory.py",),
    ),
    Break(
        14,
        "odd byte lengths passed on unaligned (no ingress repair)",
        "pipeline/audio/ingress.py",
        "audio, self._carry = audio[:whole], audio[whole:]",
        'audio, self._carry = audio, b""',
        ("tests/integration/test_degenerate_audio.py",),
        pytest_args=("-k", "odd"),
    ),
    Break(
        15,
        "a Whisper model loaded per session",
        "pipeline/session.py",
        "LocalWhisperSTTService(runtime.whisper)",
        "LocalWhisperSTTService(type(runtime.whisper)(config.stt))",
        (LIFECYCLE + "test_five_offers_at_once_get_two_sessions_and_the_models_load_once",),
    ),
    Break(
        16,
        "Whisper inference on the event loop",
        "services/stt.py",
        "return await loop.run_in_executor(self.executor, self.transcribe, audio)",
        "return self.transcribe(audio)",
        (LIFECYCLE + "test_no_inference_on_the_event_loop",),
    ),
)


@dataclass
class Result:
    """What one break did to its tests."""

    row: int
    name: str
    path: str
    tests: str
    result: str  # "FAILED (caught)", "PASSED (test too weak)", "NOT APPLIED", "ERROR", ...
    caught: bool
    exit_code: int | None
    failed: list[str]
    seconds: float
    baseline: str | None = None
    log_tail: list[str] = field(default_factory=list)


def _copy_tree(destination: Path) -> None:
    """The working tree without caches and build outputs; the big read-only parts linked."""
    linked = {REPO / p for p in LINKED}

    def ignore(directory: str, names: list[str]) -> list[str]:
        here = Path(directory)
        return [n for n in names if n in NOT_COPIED or n == "__pycache__" or here / n in linked]

    shutil.copytree(REPO, destination, ignore=ignore, symlinks=True)
    for part in LINKED:
        if (REPO / part).exists():
            (destination / part).parent.mkdir(parents=True, exist_ok=True)
            (destination / part).symlink_to(REPO / part)


@contextlib.contextmanager
def _tree_copy() -> Iterator[Path]:
    """A throw-away copy of the working tree; removed on the way out, Ctrl-C included."""
    root = Path(tempfile.mkdtemp(prefix="jetvoice-break-"))
    try:
        tree = root / REPO.name
        _copy_tree(tree)
        # The copy must import its own (broken) modules, not the working tree's.
        where = subprocess.run(
            [sys.executable, "-c", "import pipeline, services; print(pipeline.__file__)"],
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(where).resolve().is_relative_to(tree.resolve()):
            raise RuntimeError(f"the copy imports pipeline from {where}, not from {tree}")
        yield tree
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _apply(tree: Path, item: Break) -> str | None:
    """Apply the break in the copy; the original text, or None when ``old`` is not there once."""
    target = tree / item.path
    original = target.read_text(encoding="utf-8")
    if original.count(item.old) != 1:
        return None
    target.write_text(original.replace(item.old, item.new), encoding="utf-8")
    return original


def _failed_tests(junit: Path) -> list[str]:
    if not junit.exists():
        return []
    failed = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    return failed


def _pytest(tree: Path, item: Break, junit: Path, log: Path) -> tuple[int | None, list[str], float]:
    """Run the break's tests in the copy; exit code (None on our timeout), failures, seconds.

    pytest's output goes to ``log``.
    """
    junit.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *item.pytest_args,
        *item.tests,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **item.env}
    started = time.monotonic()
    with (
        log.open("wb") as output,
        subprocess.Popen(
            command,
            cwd=tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as process,
    ):
        try:
            code: int | None = process.wait(item.timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if process.poll() is None:
                # The whole process group: pytest and the agents it started.
                os.killpg(process.pid, 9)
                process.wait()
    return code, _failed_tests(junit), time.monotonic() - started


def _verdict(code: int | None, failed: list[str]) -> tuple[str, bool]:
    # pytest: 0 all passed, 1 some failed; 2-5 interrupted, internal or usage error, nothing run.
    if code == 1 and failed:
        return "FAILED (caught)", True
    if code == 0:
        return "PASSED (test too weak)", False
    if code is None:
        return "TIMED OUT", False
    return f"ERROR (pytest exit {code})", False


def _wait_while(path: Path | None) -> None:
    while path is not None and path.exists():
        print(f"waiting: {path} exists", file=sys.stderr, flush=True)
        time.sleep(60)


def run(items: Sequence[Break], *, baseline: bool, pause_while: Path | None) -> list[Result]:
    """Apply each break in one throw-away copy, in turn, and run its tests."""
    results = []
    with _tree_copy() as tree:
        junit = tree.parent / "junit.xml"
        log = tree.parent / "pytest.log"
        baselines: dict[tuple[object, ...], str] = {}
        for item in items:
            tests = " ".join(item.tests)
            print(f"row {item.row}: {item.name}: running {tests}", file=sys.stderr, flush=True)
            base: str | None = None
            if baseline:
                key = (item.tests, item.pytest_args, tuple(sorted(item.env.items())))
                if key not in baselines:  # breaks guarded by the same tests share one run
                    _wait_while(pause_while)
                    code, failed, _ = _pytest(tree, item, junit, log)
                    baselines[key] = (
                        "passed" if code == 0 else f"exit {code}: {', '.join(failed) or '-'}"
                    )
                base = baselines[key]
            _wait_while(pause_while)
            original = _apply(tree, item)
            code, failed, seconds, tail = None, [], 0.0, []
            if original is None:
                verdict, caught = "NOT APPLIED (text not found once)", False
            else:
                try:
                    code, failed, seconds = _pytest(tree, item, junit, log)
                finally:
                    (tree / item.path).write_text(original, encoding="utf-8")
                verdict, caught = _verdict(code, failed)
                if base not in (None, "passed"):
                    verdict, caught = f"NO VERDICT: unbroken, {base}", False
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            result = Result(
                row=item.row,
                name=item.name,
                path=item.path,
                tests=tests,
                result=verdict,
                caught=caught,
                exit_code=code,
                failed=failed,
                seconds=round(seconds, 1),
                baseline=base,
                log_tail=tail,
            )
            results.append(result)
            print(_row(result), flush=True)
    return results


def _row(result: Result) -> str:
    unbroken = f" | {result.baseline}" if result.baseline is not None else ""
    return (
        f"| {result.row} | {result.name} ({result.path}) | {result.tests} | {result.result}"
        f" ({result.seconds:.0f} s){unbroken} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected breaks; exit 1 if any was not caught by its tests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", help="comma-separated RELIABILITY rows (default: all)")
    parser.add_argument("--list", action="store_true", help="list the breaks and exit")
    parser.add_argument(
        "--baseline", action="store_true", help="first run each break's tests unbroken"
    )
    parser.add_argument(
        "--pause-while",
        type=Path,
        default=None,
        help="before each run, wait while this file exists (e.g. a benchmark's lock file)",
    )
    parser.add_argument(
        "--json", type=Path, default=ARTIFACT, help=f"results file (default: {ARTIFACT})"
    )
    args = parser.parse_args(argv)
    rows = {int(r) for r in args.rows.split(",")} if args.rows else None
    items = [b for b in BREAKS if rows is None or b.row in rows]
    if args.list:
        for item in items:
            found = (REPO / item.path).read_text(encoding="utf-8").count(item.old)
            state = "applies" if found == 1 else f"TEXT FOUND {found} TIMES"
            print(f"row {item.row}: {item.name} ({item.path}, {state}) -> {' '.join(item.tests)}")
        return 0
    if args.baseline:
        print("| row | break | test | broken | unbroken |\n|---|---|---|---|---|", flush=True)
    else:
        print("| row | break | test | result |\n|---|---|---|---|", flush=True)
    results = run(items, baseline=args.baseline, pause_while=args.pause_while)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    missed = [r for r in results if not r.caught]
    print(f"{len(results) - len(missed)}/{len(results)} breaks caught; results in {args.json}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
