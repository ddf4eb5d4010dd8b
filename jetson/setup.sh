#!/usr/bin/env bash
# Set up jetvoice on a Jetson Orin with JetPack 6 (L4T R36): uv-managed Python, the project, the
# GPU builds of onnxruntime and CTranslate2, the models, the vLLM container, systemd units and the
# power mode. Idempotent: every step checks first and skips what is already done. --dry-run
# prints what it would do and changes nothing (it also runs on a non-Jetson, for review and CI).
# Written from public sources (NVIDIA Jetson AI Lab, jetson-containers); NOT run on a device by this project yet.
#
#   sudo jetson/setup.sh --profile orin-nx [--models-archive FILE] [--vllm-image-tar FILE]
#        [--wheelhouse DIR] [--ctranslate2-wheel FILE | --build-ctranslate2] [--user NAME]
#        [--models-dir DIR] [--host ADDR] [--dry-run] [--render-units DIR]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
install_dir=$(cd "$here/.." && pwd)
profile=""
models_dir="$install_dir/models/weights"
models_archive=""
vllm_image_tar=""
wheelhouse=""
ct2_wheel=""
build_ct2=0
run_user=${SUDO_USER:-$(id -un)}
host=0.0.0.0
dry_run=0
render_only=""
python_version=3.12
# Jetson AI Lab index for JetPack 6 / CUDA 12.6 (the stock JetPack 6.1/6.2 host). Use it as the
# only index for these packages: with --extra-index-url pip prefers PyPI's CPU-only wheels.
jetson_index=${JETVOICE_JETSON_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu126}
vllm_image=${JETVOICE_VLLM_IMAGE:-ghcr.io/nvidia-ai-iot/vllm:latest-jetson-orin}

die() { echo "setup.sh: error: $*" >&2; exit 2; }
step() { echo "== $*"; }
skip() { echo "   ok: $*"; }
run() {
    if [ "$dry_run" = 1 ]; then
        echo "   would run: $*"
    else
        echo "   run: $*"
        "$@"
    fi
}

while [ $# -gt 0 ]; do
    case $1 in
        --profile) profile=${2:?}; shift 2 ;;
        --models-dir) models_dir=${2:?}; shift 2 ;;
        --models-archive) models_archive=${2:?}; shift 2 ;;
        --vllm-image-tar) vllm_image_tar=${2:?}; shift 2 ;;
        --wheelhouse) wheelhouse=${2:?}; shift 2 ;;
        --ctranslate2-wheel) ct2_wheel=${2:?}; shift 2 ;;
        --build-ctranslate2) build_ct2=1; shift ;;
        --user) run_user=${2:?}; shift 2 ;;
        --host) host=${2:?}; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --render-units) render_only=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[ -n "$profile" ] || die "--profile is required (orin-nano, orin-nx, agx-orin)"
env_file="$install_dir/jetson/env/$profile.env"
if [ ! -f "$env_file" ]; then
    known=""
    for f in "$install_dir"/jetson/env/*.env; do known="$known $(basename "$f" .env)"; done
    die "profile $profile does not run on a Jetson (no $env_file; known:$known)"
fi
# shellcheck source=jetson/env/orin-nx.env
. "$env_file"

# Fill the unit templates: used by the install step and, alone, by `just check-jetson`.
render_units() {
    local out=$1 docker_bin
    docker_bin=$(command -v docker || echo /usr/bin/docker)
    mkdir -p "$out"
    for template in "$install_dir"/jetson/systemd/*.service.in; do
        sed -e "s|@INSTALL_DIR@|$install_dir|g" \
            -e "s|@MODELS_DIR@|$models_dir|g" \
            -e "s|@PROFILE@|$JETVOICE_PROFILE|g" \
            -e "s|@USER@|$run_user|g" \
            -e "s|@HOST@|$host|g" \
            -e "s|@DOCKER@|$docker_bin|g" \
            -e "s|@VLLM_PORT@|$JETVOICE_VLLM_PORT|g" \
            -e "s|@SERVED_MODEL@|$JETVOICE_SERVED_MODEL|g" \
            -e "s|@POWER_MODE@|$JETVOICE_POWER_MODE|g" \
            -e "s|@JETSON_CLOCKS@|$JETVOICE_JETSON_CLOCKS|g" \
            "$template" > "$out/$(basename "$template" .in)"
    done
}

if [ -n "$render_only" ]; then
    render_units "$render_only"
    echo "rendered units into $render_only"
    exit 0
fi

# --- 0. the machine --------------------------------------------------------------------------
step "machine"
release=$(head -n 1 /etc/nv_tegra_release 2>/dev/null || true)
if [ "$(uname -m)" != aarch64 ] || [ -z "$release" ]; then
    [ "$dry_run" = 1 ] || die "not a Jetson ($(uname -m), no /etc/nv_tegra_release); use --dry-run to review the plan"
    echo "   not a Jetson ($(uname -m)): dry run only, showing the plan"
elif ! echo "$release" | grep -q "R36"; then
    die "L4T '$release': this set-up is for JetPack 6 (L4T R36)"
else
    skip "$release"
fi
if [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run with sudo (it installs units, configures Docker and sets the power mode)"
fi
as_user() { if [ "$(id -un)" = "$run_user" ]; then run "$@"; else run sudo -u "$run_user" -H "$@"; fi; }

# --- 1. uv and a uv-managed Python (JetPack 6 ships 3.10; pipecat needs >= 3.11) ---------------
step "uv and Python $python_version"
if command -v uv >/dev/null; then
    skip "uv $(uv --version | cut -d' ' -f2)"
else
    as_user python3 -m pip install --user uv
fi
uv_bin=$(command -v uv || echo "/home/$run_user/.local/bin/uv")
if "$uv_bin" python find "$python_version" >/dev/null 2>&1; then
    skip "Python $python_version ($("$uv_bin" python find "$python_version" 2>/dev/null))"
else
    as_user "$uv_bin" python install "$python_version"
fi

# --- 2. the project (no `cpu` extra: the Jetson runs vLLM, not llama.cpp) --------------------
step "project environment in $install_dir/.venv"
sync_args=(sync --locked --no-dev --python "$python_version")
[ -z "$wheelhouse" ] || sync_args+=(--offline --find-links "$wheelhouse")
if [ -x "$install_dir/.venv/bin/jetvoice" ] && (cd "$install_dir" && "$uv_bin" sync --locked --no-dev --check --python "$python_version" >/dev/null 2>&1); then
    skip "locked environment already synced"
else
    as_user env -C "$install_dir" "$uv_bin" "${sync_args[@]}"
fi
py="$install_dir/.venv/bin/python"

# --- 3. GPU onnxruntime from the Jetson index, in place of PyPI's CPU build ------------------
step "onnxruntime with CUDAExecutionProvider"
if [ -x "$py" ] && "$py" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())' 2>/dev/null; then
    skip "onnxruntime already has the CUDA provider"
else
    # pipecat depends on `onnxruntime`; both wheels install the same module, so remove the CPU one.
    as_user "$uv_bin" pip uninstall --python "$py" onnxruntime
    if [ -n "$wheelhouse" ]; then
        as_user "$uv_bin" pip install --python "$py" --no-index --find-links "$wheelhouse" onnxruntime-gpu
    else
        # cp312 for cu126 is unconfirmed on the index (cp310 1.23.0 is seen there); if this fails,
        # build it (jetson-containers' onnxruntime recipe) and pass it with --wheelhouse.
        as_user "$uv_bin" pip install --python "$py" --index-url "$jetson_index" onnxruntime-gpu
    fi
fi

# --- 4. CTranslate2 with CUDA (faster-whisper) ----------------------------------------------
step "CTranslate2 with CUDA"
if [ -x "$py" ] && "$py" -c 'import ctranslate2, sys; sys.exit(ctranslate2.get_cuda_device_count() < 1)' 2>/dev/null; then
    skip "CTranslate2 sees CUDA"
elif [ -n "$ct2_wheel" ]; then
    as_user "$uv_bin" pip install --python "$py" --no-deps --reinstall "$ct2_wheel"
elif [ "$build_ct2" = 1 ]; then
    # jetson-containers' recipe (packages/ml/ctranslate2/build.sh), arch 8.7 = Orin. About an hour.
    src=/opt/jetvoice-build/CTranslate2
    [ -d "$src" ] || run git clone --recursive --branch v4.7.1 https://github.com/OpenNMT/CTranslate2 "$src"
    run cmake -S "$src" -B "$src/build" -DWITH_CUDA=ON -DWITH_CUDNN=ON -DWITH_MKL=OFF \
        -DOPENMP_RUNTIME=COMP -DCUDA_ARCH_LIST=8.7 -DCMAKE_BUILD_TYPE=Release
    run cmake --build "$src/build" --parallel "$(nproc)"
    run cmake --install "$src/build"
    run ldconfig
    as_user "$uv_bin" pip install --python "$py" --no-deps --reinstall "$src/python"
else
    echo "   WARNING: CTranslate2 has no CUDA (the index's build is CPU-only, jetson-containers #1726):"
    echo "   Whisper will run on the CPU. Re-run with --build-ctranslate2 or --ctranslate2-wheel FILE."
fi

# --- 5. models: unpack an archive (air-gapped) or check what is there ------------------------
step "models for $profile in $models_dir"
jetvoice=("$install_dir/.venv/bin/jetvoice")
if [ -n "$models_archive" ]; then
    as_user "${jetvoice[@]}" models unpack --models-dir "$models_dir" "$models_archive"
else
    as_user "${jetvoice[@]}" models verify --profile "$profile" --models-dir "$models_dir" ||
        echo "   WARNING: models incomplete: pull them (connected) or pass --models-archive FILE"
fi

# --- 6. Docker with the NVIDIA runtime, and the vLLM image ------------------------------------
step "Docker, NVIDIA runtime, vLLM image"
command -v docker >/dev/null || [ "$dry_run" = 1 ] || die "docker not found (JetPack's nvidia-container packages provide it)"
if grep -q '"nvidia"' /etc/docker/daemon.json 2>/dev/null; then
    skip "nvidia runtime configured in /etc/docker/daemon.json"
else
    run nvidia-ctk runtime configure --runtime=docker
    run systemctl restart docker
fi
if docker image inspect "$vllm_image" >/dev/null 2>&1; then
    skip "image $vllm_image present"
elif [ -n "$vllm_image_tar" ]; then
    run docker load --input "$vllm_image_tar"
else
    run docker pull "$vllm_image"
fi
run mkdir -p /var/cache/jetvoice/vllm

# --- 7. systemd units ------------------------------------------------------------------------
step "systemd units"
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
render_units "$rendered"
changed=0
for unit in "$rendered"/*.service; do
    name=$(basename "$unit")
    if cmp -s "$unit" "/etc/systemd/system/$name"; then
        skip "$name unchanged"
    else
        run install -m 0644 "$unit" "/etc/systemd/system/$name"
        changed=1
    fi
done
[ "$changed" = 0 ] || run systemctl daemon-reload
run systemctl enable jetvoice-power.service jetvoice-vllm.service jetvoice.service

# --- 8. power mode and clocks ----------------------------------------------------------------
step "power mode $JETVOICE_POWER_MODE"
if [ "$dry_run" = 1 ]; then
    echo "   would run: $install_dir/jetson/power.sh apply --mode $JETVOICE_POWER_MODE --clocks $JETVOICE_JETSON_CLOCKS"
else
    "$install_dir/jetson/power.sh" apply --mode "$JETVOICE_POWER_MODE" --clocks "$JETVOICE_JETSON_CLOCKS"
fi

step "done: start with 'sudo systemctl start jetvoice', check with '$install_dir/.venv/bin/jetvoice doctor --profile $profile'"
