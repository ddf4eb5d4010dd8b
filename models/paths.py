"""The concrete paths a profile's services open, resolved once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.catalog import Device
from models.store import ModelStore, ModelUnavailableError


@dataclass(frozen=True)
class ProfilePaths:
    """What the services of one profile load, by role.

    ``stt_dir`` is a faster-whisper model directory; ``llm_path`` a GGUF for llama.cpp;
    ``tts_path`` the Kokoro ONNX graph; ``voices_path`` the Kokoro voices .npz.
    """

    profile: str
    device: Device
    stt_model: str
    llm_model: str
    tts_model: str
    voices_model: str
    stt_dir: Path
    llm_path: Path
    tts_path: Path
    voices_path: Path


def profile_paths(profile_name: str, store: ModelStore, *, check: bool = True) -> ProfilePaths:
    """Resolve the profile's model paths; with ``check``, a quick size check of every file.

    Raises ModelUnavailableError (naming the model, the file and the pull command) when a file is
    missing or has the wrong size, and ValueError for an unknown profile.
    """
    profile = store.catalog.profile(profile_name)
    if check:
        # One error listing every bad file beats fixing them one start-up at a time.
        problems = [
            p for m in profile.model_ids() for p in store.verify(m, quick=True, progress=False)
        ]
        if problems:
            raise ModelUnavailableError(
                problems[0].model_id,
                "; ".join(str(p) for p in problems),
                fix=f"jetvoice models pull --profile {profile.name}",
            )
    resolve = store.entry
    return ProfilePaths(
        profile=profile.name,
        device=profile.device,
        stt_model=profile.stt,
        llm_model=profile.llm,
        tts_model=profile.tts,
        voices_model=profile.voices,
        stt_dir=resolve(profile.stt),
        llm_path=resolve(profile.llm),
        tts_path=resolve(profile.tts),
        voices_path=resolve(profile.voices),
    )
