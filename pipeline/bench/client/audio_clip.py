"""Audio clips as mono float32 arrays: WAV loading, level analysis and voiced-region search.

Shared by the loopback caller (what it says, what it hears) and the latency benchmark, which
measures from the true end of speech rather than from the end of a clip's trailing silence.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# Level below which a 10 ms block of a recorded clip counts as silence. The fixtures' noise
# floors sit at -45 to -57 dBFS and their speech at -5 to -30 dBFS.
DEFAULT_CLIP_THRESHOLD_DBFS = -40.0
# Guards log10 against digital silence; -120 dBFS is far below any threshold in use.
_POWER_FLOOR = 1e-12


def to_mono_float32(samples: npt.NDArray[np.generic]) -> FloatArray:
    """Return `samples` as mono float32 in [-1, 1].

    Accepts int16, int32 or floating-point input, 1-D (mono) or 2-D shaped
    (frames, channels); channels are averaged.

    Raises:
        ValueError: on an unsupported dtype or shape, or non-finite float samples.
    """
    array = np.asarray(samples)
    if array.ndim not in (1, 2):
        raise ValueError(f"audio must be 1-D or (frames, channels), got shape {array.shape}")
    if array.dtype == np.int16:
        data = array.astype(np.float32) / 32768.0
    elif array.dtype == np.int32:
        data = (array.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError("audio contains NaN or infinite samples")
        data = np.clip(array, -1.0, 1.0).astype(np.float32)
    else:
        raise ValueError(f"unsupported audio dtype {array.dtype}; use int16, int32 or float")
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    return data


def load_wav(path: str | Path) -> tuple[FloatArray, int]:
    """Load a PCM WAV file of any rate and channel count as (mono float32, sample_rate)."""
    with wave.open(str(path), "rb") as wav:
        sample_rate = wav.getframerate()
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        # 8-bit WAV is unsigned with a 128 offset.
        ints = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0
        data = ints / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        # No numpy dtype for 24-bit: widen each little-endian triplet into the top of an int32.
        triplets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints32 = (triplets[:, 0] << 8) | (triplets[:, 1] << 16) | (triplets[:, 2] << 24)
        data = ints32.astype(np.float32) / 2147483648.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return data.astype(np.float32), sample_rate


def block_levels_dbfs(samples: FloatArray, block: int) -> npt.NDArray[np.float32]:
    """Mean-square level in dBFS of each whole `block`-sample block (a trailing partial block
    is measured on its own)."""
    if block <= 0:
        raise ValueError(f"block must be positive, got {block}")
    count = -(-len(samples) // block)
    padded = np.zeros(count * block, dtype=np.float64)
    padded[: len(samples)] = samples
    power = np.square(padded).reshape(count, block).sum(axis=1)
    sizes = np.full(count, block, dtype=np.float64)
    if count and len(samples) % block:
        sizes[-1] = len(samples) % block
    return (10.0 * np.log10(power / sizes + _POWER_FLOOR)).astype(np.float32)


def _voiced_blocks(
    samples: FloatArray, sample_rate: int, threshold_dbfs: float, block_ms: float
) -> tuple[npt.NDArray[np.intp], int]:
    block = max(1, round(sample_rate * block_ms / 1000.0))
    levels = block_levels_dbfs(samples, block)
    return np.flatnonzero(levels >= threshold_dbfs), block


def first_voiced_sample(
    samples: FloatArray,
    sample_rate: int,
    threshold_dbfs: float = DEFAULT_CLIP_THRESHOLD_DBFS,
    block_ms: float = 10.0,
) -> int | None:
    """Index of the first sample of the first block at or above `threshold_dbfs`, or None."""
    voiced, block = _voiced_blocks(samples, sample_rate, threshold_dbfs, block_ms)
    return int(voiced[0]) * block if len(voiced) else None


def last_voiced_sample(
    samples: FloatArray,
    sample_rate: int,
    threshold_dbfs: float = DEFAULT_CLIP_THRESHOLD_DBFS,
    block_ms: float = 10.0,
) -> int | None:
    """Index of the last sample of the last block at or above `threshold_dbfs`, or None.

    Block resolution (10 ms by default) is finer than any latency this project measures.
    """
    voiced, block = _voiced_blocks(samples, sample_rate, threshold_dbfs, block_ms)
    if not len(voiced):
        return None
    return min(len(samples), (int(voiced[-1]) + 1) * block) - 1
