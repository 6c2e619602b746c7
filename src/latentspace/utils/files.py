"""Atomic writes: every file latentspace writes appears whole or not at all (temp file + rename)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


# Read once at import: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would have
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cache_root() -> Path:
    """Where downloads and decoded caches live: ``$LATENTSPACE_CACHE`` or ``~/.cache/latentspace``."""
    root = os.environ.get("LATENTSPACE_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "latentspace"


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomic(path, lambda p: p.write_bytes(data))


def write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """Write numpy arrays as one .npz file atomically (no object arrays: it loads with allow_pickle=False)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append ".npz" to the temp name
            np.savez(f, **arrays)

    return write_atomic(path, write)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file raises ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be a latentspace file") from None


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line; a line is written with one write() call so a crash never leaves half a record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All complete records of a JSON-lines file (a torn last line from a crash is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


CHECKSUM_KEY = "latentspace.sha256"
_HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own bound on the JSON header


def save_safetensors(path: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, str] | None = None,
                     framework: str = "pt") -> Path:
    """Write tensors ("pt") or arrays ("numpy") atomically, with a SHA-256 of the data in the metadata.

    The checksum covers every tensor byte, so a flipped bit anywhere in the data is caught on load.
    """
    save = _codec(framework)[0]
    if framework == "pt":  # channels-last weights (and their optimiser moments) are stored in the usual layout
        tensors = {name: t.contiguous() for name, t in tensors.items()}
    raw = save(tensors, metadata=dict(metadata or {}))
    digest = hashlib.sha256(_split_safetensors(raw, "<new>")[1]).hexdigest()
    return write_bytes(path, save(tensors, metadata={**(metadata or {}), CHECKSUM_KEY: digest}))


def read_safetensors(path: str | os.PathLike, framework: str = "pt") -> tuple[dict[str, Any], dict[str, str]]:
    """All tensors ("pt") or arrays ("numpy") of a safetensors file, and its metadata.

    A missing, truncated, corrupt or tampered file (checksum mismatch) raises ValueError naming it; files
    without a checksum (written by other tools or before 0.2) load unchecked. Nothing is ever unpickled.
    """
    from safetensors import SafetensorError  # imported here: utils stays free of heavy imports

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    raw = path.read_bytes()
    header, data = _split_safetensors(raw, path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path}: not a readable safetensors file (metadata must map strings to strings)")
    expected = meta.get(CHECKSUM_KEY)
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f"{path}: checksum mismatch: the file is damaged (bytes changed after it was written)")
    try:
        return _codec(framework)[1](raw), dict(meta)
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupt?): {first}") from None


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file, reading only its header; ValueError names a damaged file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            raw = head + f.read(n) if 0 <= n <= _HEADER_LIMIT else head
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    meta = _split_safetensors(raw, path)[0].get("__metadata__") or {}
    return dict(meta) if isinstance(meta, dict) else {}


def _split_safetensors(raw: bytes, path: object) -> tuple[dict, bytes]:
    """(header JSON, data bytes) of a safetensors file's bytes; malformed framing raises ValueError."""
    bad = f"{path}: not a readable safetensors file (truncated or corrupt?)"
    if len(raw) < 8:
        raise ValueError(f"{bad}: {len(raw)} bytes")
    n = int.from_bytes(raw[:8], "little")
    if n > min(_HEADER_LIMIT, len(raw) - 8):
        raise ValueError(f"{bad}: header length {n} exceeds the file")
    try:
        header = json.loads(raw[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{bad}: header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"{bad}: header is not a JSON object")
    return header, raw[8 + n:]


def _codec(framework: str):
    if framework == "pt":
        from safetensors.torch import load, save
    elif framework == "numpy":
        from safetensors.numpy import load, save
    else:
        raise ValueError(f"framework must be 'pt' or 'numpy', got {framework!r}")
    return save, load
