"""One pipeline variant, start to finish: start its server, drive the calls, stop it.

Variants run one after the other, never at once: on a 2-core machine two servers would measure
each other. Cold start is process launch to ``/health`` ready (models loaded and warmed).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline.bench.corpus import CallPlan
from pipeline.bench.driver import CallDriver, CallRecord, DriverConfig, Progress
from pipeline.bench.measurement import TurnResult
from pipeline.ops.agent_process import AgentProcess, AgentProcessError
from pipeline.webrtc.ice_policy import loopback_only_ice


@dataclass(frozen=True)
class VariantRun:
    """What one variant's run produced."""

    variant: str
    base_url: str
    cold_start_s: float | None
    """Process launch to ready; None when driving an already running server."""
    startup_secs: dict[str, Any] | None
    """The server's own start-up timings from ``/health``."""
    exit_code: int | None
    turns: tuple[TurnResult, ...]
    calls: tuple[CallRecord, ...]
    log_path: Path | None
    error: str | None = None
    """Why the variant could not run at all (its turns are then empty)."""
    started_at: float = 0.0
    wall_s: float = 0.0


def _health(base_url: str) -> dict[str, Any] | None:
    try:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            response = client.get(f"{base_url.rstrip('/')}/health")
    except httpx.HTTPError:
        return None
    body = response.json() if response.status_code == 200 else None
    return body if isinstance(body, dict) else None


def _drive(
    base_url: str, variant: str, plans: Sequence[CallPlan], config: DriverConfig, progress: Progress
) -> CallDriver:
    driver = CallDriver(base_url, variant, config, progress)
    # Host candidates on 127.0.0.1 only: the benchmark must never touch another address.
    with loopback_only_ice():
        asyncio.run(driver.run(plans))
    return driver


def run_server_url(
    base_url: str, variant: str, plans: Sequence[CallPlan], config: DriverConfig, progress: Progress
) -> VariantRun:
    """Drive a server someone else started; cold start is not measured."""
    started = time.monotonic()
    health = _health(base_url)
    if health is None:
        return VariantRun(
            variant,
            base_url,
            None,
            None,
            None,
            (),
            (),
            None,
            error=f"{base_url}/health is not ready",
        )
    driver = _drive(base_url, variant, plans, config, progress)
    startup = health.get("startup_secs")
    return VariantRun(
        variant=variant,
        base_url=base_url,
        cold_start_s=None,
        startup_secs=startup if isinstance(startup, dict) else None,
        exit_code=None,
        turns=tuple(driver.turns),
        calls=tuple(driver.calls),
        log_path=None,
        started_at=time.time(),
        wall_s=time.monotonic() - started,
    )


def run_started_server(
    variant: str,
    serve_args: Sequence[str],
    plans: Sequence[CallPlan],
    config: DriverConfig,
    progress: Progress,
    *,
    log_dir: Path,
    ready_timeout_s: float = 300.0,
) -> VariantRun:
    """Start ``jetvoice serve --pipeline <variant> <serve_args>``, drive it, stop it.

    The server's log is kept as ``<log_dir>/serve-<variant>.log``.
    """
    started = time.monotonic()
    wall_start = time.time()
    process = AgentProcess(["--pipeline", variant, *serve_args])
    kept_log = log_dir / f"serve-{variant}.log"
    progress(f"[{variant}] starting jetvoice serve --pipeline {variant} on {process.base_url}")
    try:
        try:
            cold = process.start(ready_timeout=ready_timeout_s)
        except AgentProcessError as error:
            return VariantRun(
                variant,
                process.base_url,
                None,
                None,
                process.stop(),
                (),
                (),
                None,
                error=f"server did not start: {error}",
            )
        progress(f"[{variant}] ready after {cold:.1f} s (cold start)")
        health = process.health()
        driver = _drive(process.base_url, variant, plans, config, progress)
    finally:
        code = process.stop()
        log_dir.mkdir(parents=True, exist_ok=True)
        if process.log_path.exists():
            shutil.copyfile(process.log_path, kept_log)
            process.log_path.unlink(missing_ok=True)
    startup = health.get("startup_secs")
    return VariantRun(
        variant=variant,
        base_url=process.base_url,
        cold_start_s=cold,
        startup_secs=startup if isinstance(startup, dict) else None,
        exit_code=code,
        turns=tuple(driver.turns),
        calls=tuple(driver.calls),
        log_path=kept_log,
        started_at=wall_start,
        wall_s=time.monotonic() - started,
    )
