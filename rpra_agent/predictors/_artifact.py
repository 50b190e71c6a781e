"""Safe persistence of a learned predictor: a JSON manifest plus a numpy ``.npz``, no pickle.

A saved predictor is a directory::

    manifest.json   format name and version, featurizer and classifier configs,
                    grade scale, training-data hash, metrics, arrays' SHA-256
    arrays.npz      every fitted array (numbers or unicode strings; never objects)

Loading parses the JSON, checks the format version, checks the SHA-256 of
``arrays.npz`` against the manifest (an integrity check against truncation or
tampering of the arrays alone; not a signature), and reads the arrays with
``numpy.load(..., allow_pickle=False)``, so no code from the artifact is ever
executed. The same content travels in a store artifact as JSON with the ``.npz``
base64-encoded (:func:`to_payload` / :func:`from_payload`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError

__all__ = ["ARTIFACT_FORMAT", "ARTIFACT_VERSION", "from_payload", "read_artifact", "to_payload", "write_artifact"]

ARTIFACT_FORMAT = "rpra-learned-predictor"
ARTIFACT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
MAX_ARRAY_BYTES = 512 * 2**20
"""Largest total size the arrays of an artifact may have once decompressed and loaded."""
MAX_MANIFEST_DEPTH = 32
"""Deepest nesting of objects and lists a manifest may have."""


def _check_npz_size(data: bytes, where: str, limit: int = MAX_ARRAY_BYTES) -> None:
    """Check the declared sizes before anything is decompressed or allocated.

    Reads the zip's central directory (each member's uncompressed size) and each
    ``.npy`` header (shape and dtype: what ``numpy.load`` would allocate), and refuses
    when either total exceeds ``limit`` or a header claims more data than its member holds.
    """
    from numpy.lib import format as npy

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            declared = sum(m.file_size for m in members)
            if declared > limit:
                raise ConfigError(
                    f"{where}: the arrays decompress to {declared} bytes, over the limit of {limit}; "
                    "this is not an artifact rpra wrote: re-train the predictor"
                )
            allocated = 0
            for member in members:
                with archive.open(member) as fh:
                    version = npy.read_magic(fh)
                    header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                    shape, _, dtype = header(fh, max_header_size=10_000)
                    count = 1
                    for dim in shape:
                        count *= int(dim)
                    need = count * dtype.itemsize
                    if need > member.file_size:
                        raise ConfigError(
                            f"{where}: array {member.filename!r} claims {need} bytes but holds {member.file_size}; "
                            "the artifact is corrupt: re-train the predictor"
                        )
                    allocated += need
            if allocated > limit:
                raise ConfigError(f"{where}: the arrays need {allocated} bytes, over the limit of {limit}")
    except ConfigError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"{where}: the arrays cannot be read safely ({exc}); re-train the predictor") from exc


def _too_deep(value: Any, limit: int = MAX_MANIFEST_DEPTH) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (walked iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list | tuple) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, Mapping | list | tuple))
    return False


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    clean = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise ConfigError(f"array {key!r} holds Python objects; only numbers and strings can be saved")
        clean[key] = arr
    np.savez(buf, **clean)  # type: ignore[arg-type]
    return buf.getvalue()


def _npz_arrays(data: bytes, where: str) -> dict[str, np.ndarray]:
    _check_npz_size(data, where)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{where}: the arrays cannot be read safely ({exc}); re-train the predictor") from exc


def _check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != ARTIFACT_FORMAT:
        raise ConfigError(f"{where} is not an rpra learned-predictor artifact (format {ARTIFACT_FORMAT!r})")
    if _too_deep(manifest):
        raise ConfigError(
            f"{where}: the manifest nests deeper than {MAX_MANIFEST_DEPTH} levels; it is not one rpra wrote"
        )
    version = manifest.get("format_version")
    if version != ARTIFACT_VERSION:
        raise ConfigError(
            f"{where} has format version {version!r}; this rpra_agent reads version {ARTIFACT_VERSION}: "
            "re-train it with `rpra train-predictor`"
        )
    return manifest


def _verify(data: bytes, manifest: Mapping[str, Any], where: str) -> None:
    expected = (manifest.get("arrays") or {}).get("sha256")
    actual = hashlib.sha256(data).hexdigest()
    if expected != actual:
        raise ConfigError(
            f"{where}: the arrays' SHA-256 {actual[:12]}... does not match the manifest's {str(expected)[:12]}...; "
            "the artifact is corrupt or was modified: re-train or restore it"
        )


def write_artifact(path: str | Path, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``manifest.json`` and ``arrays.npz`` into the directory ``path`` (created).

    Returns:
        The directory.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    data = _npz_bytes(arrays)
    full = {**manifest, "format": ARTIFACT_FORMAT, "format_version": ARTIFACT_VERSION}
    full["arrays"] = {"file": ARRAYS, "sha256": hashlib.sha256(data).hexdigest(), "keys": sorted(arrays)}
    (out / ARRAYS).write_bytes(data)
    (out / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


def read_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify an artifact directory written by :func:`write_artifact`.

    Raises:
        ConfigError: when files are missing, the format or version is wrong, or the
            arrays do not match the manifest's hash.
    """
    root = Path(path)
    if root.is_file() and root.name == MANIFEST:
        root = root.parent
    manifest_path, arrays_path = root / MANIFEST, root / ARRAYS
    if not manifest_path.is_file() or not arrays_path.is_file():
        raise ConfigError(f"{root} is not a saved learned predictor: it needs {MANIFEST} and {ARRAYS}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{manifest_path}: not valid JSON ({exc})") from exc
    except (RecursionError, ValueError) as exc:  # nesting or an integer literal beyond the parser's limits
        raise ConfigError(
            f"{manifest_path}: the manifest nests too deep or holds a huge number ({type(exc).__name__})"
        ) from None
    manifest = _check_manifest(manifest, str(root))
    data = arrays_path.read_bytes()
    _verify(data, manifest, str(root))
    return manifest, _npz_arrays(data, str(root))


def to_payload(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """A JSON document for :meth:`DecisionStore.put_artifact` (the ``.npz`` base64-encoded)."""
    data = _npz_bytes(arrays)
    full = {**manifest, "format": ARTIFACT_FORMAT, "format_version": ARTIFACT_VERSION}
    full["arrays"] = {"encoding": "npz+base64", "sha256": hashlib.sha256(data).hexdigest(), "keys": sorted(arrays)}
    return {"manifest": full, "npz_base64": base64.b64encode(data).decode("ascii")}


def from_payload(
    payload: Mapping[str, Any], where: str = "store artifact"
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a :func:`to_payload` document.

    Raises:
        ConfigError: as for :func:`read_artifact`.
    """
    manifest = _check_manifest(payload.get("manifest"), where)
    try:
        data = base64.b64decode(str(payload.get("npz_base64", "")), validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: the arrays are not valid base64") from exc
    _verify(data, manifest, where)
    return manifest, _npz_arrays(data, where)
