"""What jetson/ needs from a profile: the environment file of the vLLM container.

jetson/env/<profile>.env is committed so that it can be read and checked without Python; a test
regenerates it from the catalog and fails when the two differ (`python -m models.deploy` rewrites
them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from models.catalog import CATALOG
from models.spec import Profile

ENV_DIR = Path(__file__).resolve().parent.parent / "jetson" / "env"


def compose_env(profile: Profile) -> str:
    """The env file for jetson/compose.yaml and the systemd units for ``profile``."""
    if profile.vllm is None or profile.llm_runtime != "vllm-container":
        raise ValueError(f"profile {profile.name} does not run the vLLM container")
    settings = profile.vllm
    extra = " ".join(a for a in settings.extra_args() if a == "--enforce-eager")
    lines = [
        f"# jetson/env/{profile.name}.env: generated from models/catalog.py by "
        "`python -m models.deploy`; do not edit",
        f"# {profile.description}",
        f"JETVOICE_PROFILE={profile.name}",
        f"JETVOICE_LLM_MODEL={profile.llm}",
        f"JETVOICE_SERVED_MODEL={profile.served_model_name}",
        f"JETVOICE_VLLM_PORT={settings.port}",
        f"JETVOICE_MAX_MODEL_LEN={settings.max_model_len}",
        f"JETVOICE_GPU_MEMORY_UTILIZATION={settings.gpu_memory_utilization:.2f}",
        f"JETVOICE_MAX_NUM_SEQS={settings.max_num_seqs}",
        f"JETVOICE_VLLM_EXTRA_ARGS={extra}",
        f"JETVOICE_POWER_MODE={profile.power_mode or ''}",
        f"JETVOICE_JETSON_CLOCKS={'1' if profile.jetson_clocks else '0'}",
    ]
    return "\n".join(lines) + "\n"


def container_profiles() -> list[Profile]:
    """The profiles that run vLLM in the Jetson container."""
    return [p for p in CATALOG.profiles.values() if p.llm_runtime == "vllm-container"]


def main() -> int:
    """Rewrite jetson/env/*.env from the catalog."""
    ENV_DIR.mkdir(parents=True, exist_ok=True)
    for profile in container_profiles():
        (ENV_DIR / f"{profile.name}.env").write_text(compose_env(profile))
        print(f"wrote {ENV_DIR / f'{profile.name}.env'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
