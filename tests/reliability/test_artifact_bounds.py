"""Learned-predictor artifacts are parsed with bounded depth and size (issue 14, item 6).

A manifest nested 5,000 deep gives ``ConfigError`` (not ``RecursionError``); an
``arrays.npz`` whose headers claim gigabytes is refused from its zip directory and
``.npy`` headers, before anything is decompressed or allocated.
"""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._artifact import ARTIFACT_FORMAT, ARTIFACT_VERSION, from_payload

LearnedPredictor = pytest.importorskip("rpra_agent.predictors.learned").LearnedPredictor


def _manifest(data: bytes, **extra: object) -> dict[str, object]:
    return {
        "format": ARTIFACT_FORMAT, "format_version": ARTIFACT_VERSION,
        "arrays": {"file": "arrays.npz", "sha256": hashlib.sha256(data).hexdigest(), "keys": ["x"]}, **extra,
    }  # fmt: skip


def _write(tmp_path, manifest_text: str, data: bytes):
    (tmp_path / "manifest.json").write_text(manifest_text)
    (tmp_path / "arrays.npz").write_bytes(data)
    return tmp_path


def _small_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros(3))
    return buf.getvalue()


def test_a_5000_deep_manifest_is_a_config_error(tmp_path):
    data = _small_npz()
    text = json.dumps(_manifest(data))[:-1] + ', "training": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(ConfigError, match="nests"):
        LearnedPredictor.load(_write(tmp_path, text, data))
    deep: object = []
    for _ in range(200):  # deep, yet within the JSON parser's reach: the depth check refuses it
        deep = [deep]
    with pytest.raises(ConfigError, match="nests deeper"):
        LearnedPredictor.load(_write(tmp_path, json.dumps(_manifest(data, featurizer=deep)), data))
    with pytest.raises(ConfigError, match="nests deeper"):
        from_payload({"manifest": _manifest(data, featurizer=deep), "npz_base64": ""})


def _bomb() -> bytes:
    """A 6 GiB array by its .npy header, in a zip whose directory says so too: a few hundred bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (805_306_368,)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
    return buf.getvalue()


def test_an_npz_claiming_gigabytes_is_refused_before_any_allocation(tmp_path):
    data = _bomb()
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="claims 6442450944 bytes"):
            LearnedPredictor.load(_write(tmp_path, json.dumps(_manifest(data)), data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_an_npz_whose_directory_declares_too_much_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("rpra_agent.predictors._artifact.MAX_ARRAY_BYTES", 1024)
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros(10_000))  # 80 kB of zeros, a few hundred bytes compressed
    data = buf.getvalue()
    from rpra_agent.predictors import _artifact

    with pytest.raises(ConfigError, match="decompress to"):
        _artifact._check_npz_size(data, "test", limit=_artifact.MAX_ARRAY_BYTES)
