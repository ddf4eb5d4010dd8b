"""Typed, frozen configuration for the agent, built once at the edge (the CLI) and passed down.

Nothing below the CLI reads environment variables or flags; every knob lives here with its
default and the reason for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LLMServerKind = Literal["llamacpp", "vllm", "external"]
# "tuned" is jetvoice's pipeline; "stock" is pipecat's stock services with the same model files,
# kept only so the benchmark can measure both side by side.
PipelineVariant = Literal["tuned", "stock"]

# Short, spoken-style instructions: every token of the system prompt is prefill on each turn,
# and anything the model writes is read aloud, so no lists, markup or emoji.
DEFAULT_SYSTEM_PROMPT = (
    "You are Jet, a friendly voice assistant running entirely on a computer in the user's "
    "home, with no internet access. Your replies are spoken aloud, so answer in one or two "
    "short, natural sentences. Never use lists, markdown, code, emoji or special characters. "
    "If you do not know something, such as live weather or news, say so briefly."
)

DEFAULT_GREETING = "Hi, I'm Jet. How can I help?"
# Spoken instead of the greeting when a session resumes the previous conversation.
DEFAULT_RESUME_GREETING = "Welcome back. Where were we?"


# The local tools the LLM may call. Home Assistant is never on by default: it needs a URL and a
# token, and is the only tool that talks to another machine.
ToolName = Literal["clock", "timers", "calculator", "units", "home_assistant"]
DEFAULT_TOOLS: tuple[ToolName, ...] = ("clock", "timers", "calculator", "units")
# Spoken as soon as the model asks for a tool, while it runs and the answer is prepared.
DEFAULT_TOOL_WORKING_PHRASE = "One moment."
# Spoken instead of an answer when a tool runs past its timeout.
DEFAULT_TOOL_TIMEOUT_APOLOGY = "Sorry, that is taking too long. Please try again later."
# Spoken, instead of asking the LLM, to a request to control a device when no device tool is
# configured (pipeline.conversation.device_requests): small models answer "Sure! I can turn on the
# light."
DEFAULT_NO_DEVICE_TOOL_ANSWER = (
    # One short sentence, one piece for Kokoro: the first, twice as long, passed the 15 s
    # synthesis timeout with a second session speaking at the same time.
    "I can't control devices in your home, so nothing was changed; "
    "connect Home Assistant with its token to let me."
)


@dataclass(frozen=True)
class ToolsConfig:
    """The tools offered to the LLM (function calling), each call bounded by a timeout."""

    enabled: tuple[ToolName, ...] = DEFAULT_TOOLS
    # Longest one tool call may run, whatever it waits on (Home Assistant included); past it
    # the call is cancelled and the bot apologises.
    timeout_secs: float = 6.0
    # The working phrase is said once a call has run this long: an instant tool's answer
    # follows at once, and a phrase still playing would hold that answer back.
    working_phrase: str = DEFAULT_TOOL_WORKING_PHRASE
    working_phrase_after_secs: float = 0.5
    timeout_apology: str = DEFAULT_TOOL_TIMEOUT_APOLOGY
    # The answer to a device request when Home Assistant is not configured; "" lets the LLM
    # answer such requests itself.
    no_device_tool_answer: str = DEFAULT_NO_DEVICE_TOOL_ANSWER
    # The tool's own sentence is the answer and the LLM is not asked again. For small models
    # that cannot answer from a tool's result: the cpu profile's 0.5B model calls the same tool
    # again, or echoes the result as JSON, instead of saying it.
    speak_results: bool = False
    # Tool calls one user turn may make before the bot gives up (a model calling in circles).
    max_calls_per_turn: int = 4
    # Timers and reminders per session, and the longest one may run.
    max_timers: int = 10
    max_timer_secs: float = 24 * 3600.0
    # Home Assistant's base URL (``http://homeassistant.local:8123``) and a long-lived access
    # token; the tool exists only when both are set. repr=False keeps the token out of logs.
    home_assistant_url: str | None = None
    home_assistant_token: str | None = field(default=None, repr=False)

    @property
    def home_assistant(self) -> bool:
        """Whether the Home Assistant tool is configured (and so offered)."""
        return (
            "home_assistant" in self.enabled
            and bool(self.home_assistant_url)
            and bool(self.home_assistant_token)
        )


@dataclass(frozen=True)
class STTConfig:
    """faster-whisper settings: greedy decoding, one model shared by every session."""

    model_dir: Path
    device: str = "cpu"
    # int8 on CPU is the fastest faster-whisper path; CUDA profiles use float16.
    compute_type: str = "int8"
    language: str = "en"
    beam_size: int = 1
    # 0: half the cores (services.stt.WhisperEngine).
    cpu_threads: int = 0
    # Decode a window of the utterance plus this much silence (at least ``min_window_secs``)
    # instead of Whisper's 30 s: the encoder's cost follows the window (services.whisper_window).
    short_window: bool = True
    window_margin_secs: float = 2.0
    min_window_secs: float = 8.0
    # Measured time from the end of a segment to its transcript; tells the turn strategy how
    # long to wait for the transcript instead of pipecat's 1 s default.
    ttfs_p99_secs: float = 0.8
    # Longest a turn's transcription may take before it is given up (the user hears the STT
    # apology); tiny.en decodes a long turn in about a second on two busy cores.
    timeout_secs: float = 15.0
    # Start transcribing once the VAD's gate says the voice has been quiet this long, instead of
    # at the VAD's stop 200 ms into the silence (services.early_transcript; needs the turn's
    # vad_energy_drop_db; 0 turns it off). Not sooner: a word's quiet end (the "s" of
    # "Americans") goes on under the gate's level for tens of ms, and cut before it Whisper
    # hears another word. On the recorded speech (`jetvoice bench --hearing`): 12.5 % of words
    # wrong at 40 ms, 11.9 % at 80, 10.1 % at 120 (AMD EPYC, 2 cores).
    early_transcript_secs: float = 0.12
    # Decode a turn's later segments with its earlier audio in front (services.turn_transcript).
    turn_context: bool = True


# Whole first sentences that answers often open with. Each is synthesized once, in the
# background after start-up, so an answer opening with one plays it without waiting for
# synthesis (a sentence end always closes the first spoken piece: services.clause_chunker).
DEFAULT_OPENERS: tuple[str, ...] = (
    "Sure!",
    "Sure.",
    "Of course!",
    "Certainly!",
    "Absolutely!",
    "Hello!",
    "Hi there!",
    "Good morning!",
    "Good evening!",
    "You're welcome!",
    "Great question!",
    "Yes.",
    "No.",
    "Okay.",
    "Hi!",
    "Great!",
    "No problem!",
    "Thank you!",
)


@dataclass(frozen=True)
class TTSConfig:
    """Kokoro (kokoro-onnx) settings; the model is loaded once per process."""

    model_path: Path
    voices_path: Path
    voice: str = "af_heart"
    speed: float = 1.0
    sample_rate: int = 24000
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    # onnxruntime intra-op threads for Kokoro; 0 lets onnxruntime choose (one per core).
    threads: int = 0
    # Let those threads spin between operators instead of sleeping (services.tts).
    spin_threads: bool = True
    # Longest one synthesized batch (up to 510 phonemes) may take before the utterance is
    # given up with an error: a bound on a hang, not on speed. Such a batch takes 3-4 s on two
    # idle cores; with two busy processes beside two agents, a 20-word sentence took over 15 s.
    timeout_secs: float = 30.0
    # Longest a piece waits for other sessions' pieces ahead of it (one synthesis at a time).
    queue_timeout_secs: float = 60.0
    # Off by default: with an opener played at once, the wait for the next piece became a
    # pause inside the answer (over 1.5 s on two loaded cores). ``DEFAULT_OPENERS`` turns it on.
    opener_phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LLMConfig:
    """The OpenAI-compatible LLM endpoint and, when managed, the server behind it."""

    server: LLMServerKind = "llamacpp"
    # Only for ``server="external"``: any OpenAI-compatible endpoint (a vLLM box on the LAN).
    base_url: str | None = None
    # Managed servers listen on loopback; 0 picks a free port at start.
    port: int = 0
    model: str = "local"
    api_key: str = "local"
    model_path: Path | None = None
    context_tokens: int = 2048
    max_tokens: int = 120
    temperature: float = 0.6
    # Longest wait for the first token, and between streamed chunks, before the turn is
    # answered with a spoken apology instead.
    request_timeout_secs: float = 10.0
    # Longest a turn waits in line for a server that serves one request at a time (llama.cpp;
    # services.llm_gate) before the apology; the request's own timeout starts after it.
    queue_timeout_secs: float = 60.0
    # Send the server the coming turn's prompt as soon as the STT has an early transcript (one
    # token, in the background), so the turn's own request finds it in the prefix cache.
    prefill: bool = True
    start_timeout_secs: float = 180.0
    threads: int = 0
    # Niceness of a managed llama.cpp server. The tuned pipeline gives it DEFAULT_LLM_NICE, below
    # the in-process models (Kokoro's first piece of each answer otherwise shares the cores with
    # the rest of the answer's generation); pipecat's stock configuration leaves it at 0.
    cpu_nice: int = 0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    extra_server_args: tuple[str, ...] = ()

    @property
    def parallel_requests(self) -> int | None:
        """How many requests the server works on at once; None: as many as it is sent.

        llama-cpp-python's server runs one request at a time and keeps the rest waiting
        without a byte of answer; vLLM batches; an external server's policy is its own.
        """
        return 1 if self.server == "llamacpp" else None


@dataclass(frozen=True)
class TurnConfig:
    """Voice activity and end-of-turn timing."""

    vad_stop_secs: float = 0.2
    vad_start_secs: float = 0.2
    vad_confidence: float = 0.7
    # A window this far (dB) below the speaker's recent speech level ends speech at once,
    # instead of when Silero's trailing confidence falls (pipeline.audio.endpointing_vad); the
    # same gate tells the early transcript and early Smart Turn that the voice went quiet
    # (pipeline.audio.voice_activity). 0: off, and those two wait for the VAD's stop.
    vad_energy_drop_db: float = 30.0
    # With it, the stop counts the quiet from the energy drop, not from the next 32 ms window.
    vad_sub_window_stop: bool = True
    # Silence after which Smart Turn's "incomplete" verdict is overruled and the turn ends.
    smart_turn_stop_secs: float = 1.5
    # Smart Turn starts predicting once the VAD's gate says the voice has been quiet this long,
    # instead of at the VAD's stop (pipeline.audio.early_smart_turn); 0: at the stop.
    smart_turn_early_secs: float = 0.04
    barge_in: bool = True


@dataclass(frozen=True)
class ServerConfig:
    """HTTP/WebRTC front end: where it listens, TLS, and who may start a session."""

    host: str = "127.0.0.1"
    port: int = 8430
    # Each session holds its own VAD, turn model, noise filter and pipeline buffers and shares
    # the engines; the profile picks the default (2 on the cpu profile).
    max_sessions: int = 2
    # People who may join one conversation from their own devices (to listen and speak) besides
    # the one who started it. They share its pipeline, so they do not count against
    # max_sessions; each costs an Opus decoder and encoder (see pipeline.sessions.party).
    max_guests: int = 3
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # The local CA's certificate (public part only), offered at /ca.crt for phones to trust.
    tls_ca_certfile: Path | None = None
    offer_timeout_secs: float = 20.0
    # Microphone packet length asked of the caller in the answer (``a=ptime``, see
    # pipeline.webrtc.packet_time); None leaves the browser's 20 ms. 10 ms packets cut ~4 ms from
    # the end of a turn, not measurable in the benchmark, and cost ~6 % of a core in the server's
    # audio path for the whole call, taken from Kokoro's first audio on a 2-core box.
    microphone_packet_ms: int | None = None
    # The pairing token; repr=False keeps it out of any log line that prints the config.
    pairing_token: str | None = field(default=None, repr=False)
    # Without it, a loopback-bound server also accepts token-less requests addressed to a
    # loopback name; a server bound to any other address always requires the token.
    require_token: bool = False
    # Offers (and /start) per client address: a burst of `offer_burst`, refilled over the window.
    offer_burst: int = 10
    offer_window_secs: float = 10.0
    # A real SDP offer is 3-10 KB; anything far larger is refused before it is parsed.
    max_body_bytes: int = 64 * 1024
    body_timeout_secs: float = 10.0
    # The addresses to print and encode in the pairing QR code (the LAN URLs a phone opens).
    public_urls: tuple[str, ...] = ()
    # A connected peer that sent neither a data-channel ping nor an audio packet for this long
    # is gone (tab killed, Wi-Fi lost) and its session ends. Browsers ping every second and send
    # audio (silence when muted) 50 times a second; aiortc alone notices only after its ICE
    # consent checks fail, 25-35 s later.
    peer_timeout_secs: float = 10.0
    # A peer that was answered but never connected (no ping, no audio) is given up after this.
    connect_timeout_secs: float = 30.0
    # asyncio debug mode with a 50 ms slow-callback log (JETVOICE_ASYNCIO_DEBUG=1), to prove
    # that no inference runs on the event loop.
    asyncio_debug: bool = False

    @property
    def scheme(self) -> str:
        """``https`` when a certificate is configured."""
        return "https" if self.tls_certfile else "http"


@dataclass(frozen=True)
class HistoryConfig:
    """The conversation history (SQLite in the state directory); off stores nothing at all."""

    enabled: bool = True
    path: Path | None = None
    retention_days: float = 30.0
    # A new session starts with the last conversation's turns in its LLM context.
    resume: bool = False


@dataclass(frozen=True)
class ContextWindowConfig:
    """The rolling context window: the last turns verbatim, older ones in a short summary."""

    keep_turns: int = 6
    # Fold only once this many turns beyond ``keep_turns`` piled up: between folds the prompt's
    # prefix stays the same and the server reuses its cache for all but the newest turn.
    fold_every: int = 3
    # "llm" asks the model for a summary; "digest" keeps a plain-text digest instead. A llama.cpp
    # server answers one request at a time, so on a CPU a summary request would make the next
    # turn wait behind it: the CPU profile uses the digest.
    summarizer: Literal["llm", "digest"] = "llm"
    summary_max_tokens: int = 80
    summary_timeout_secs: float = 8.0
    # The summary (or, when the LLM fails, the plain-text digest) is cut to this many characters.
    digest_chars: int = 600


# Weight 110 against the event loop's 1024 (nice 0): the loop, a few percent of one core, gets
# the core within a scheduler tick when a packet arrives; the models lose almost nothing.
DEFAULT_COMPUTE_NICE = 10
# The managed llama.cpp server's niceness in the tuned pipeline: below Kokoro. Kokoro's first
# piece of an answer is synthesized while the LLM generates the rest; sharing the cores as
# equals, its two onnxruntime threads wait on the one that shares a core with llama.cpp, and a
# four-word piece took 1068 ms instead of 699 (median of 12, 2 cores). At weight 15 against 110
# llama.cpp gets what Kokoro leaves, and Kokoro is idle most of the time once speech plays.
DEFAULT_LLM_NICE = 19


@dataclass(frozen=True)
class AgentConfig:
    """Everything ``jetvoice serve`` needs, assembled once by the CLI."""

    profile: str
    stt: STTConfig
    tts: TTSConfig
    llm: LLMConfig
    turn: TurnConfig = field(default_factory=TurnConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    greeting: str = DEFAULT_GREETING
    noise_filter: bool = True
    # RNNoise's output goes to the VAD only; True: to Whisper and Smart Turn as well, which
    # costs Whisper words (pipeline.audio.microphone_audio).
    speech_models_hear_denoised: bool = False
    warmup: bool = True
    variant: PipelineVariant = "tuned"
    history: HistoryConfig = field(default_factory=HistoryConfig)
    context_window: ContextWindowConfig = field(default_factory=ContextWindowConfig)
    resume_greeting: str = DEFAULT_RESUME_GREETING
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    # Niceness of the model threads (Whisper, Smart Turn, Kokoro) so that the audio path runs
    # first on a busy box (pipeline.ops.compute_priority); 0 leaves every thread at the agent's.
    compute_nice: int = DEFAULT_COMPUTE_NICE
