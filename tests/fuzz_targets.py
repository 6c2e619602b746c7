"""Fuzz targets for every parser that reads outside bytes; shared by tests/test_fuzz.py (a few hundred cases
per parser, in CI) and benchmarks/fuzz.py (10,000+ per parser, with hang and memory limits).

A target is a Hypothesis strategy of cases and a function that writes one case into an empty folder and
calls the parser on it. The property: the parser loads the case correctly or raises ValueError with a
one-line message; any other exception, a wrong result, or a multi-line message is a crash. Cases come
from three kinds of strategy, so the fuzzer gets past the first check of each format:
- raw bytes;
- a valid file with byte mutations (tests/fuzz_mutations.py); PNG chunk CRCs are recomputed half of the
  time, so mutated chunks reach the decoders;
- files built from fuzzed structure (IDX header fields, CSV cells, JSON values, safetensors headers,
  arrays of odd dtypes and shapes), whose results are checked: exactly for IDX, by invariants elsewhere.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from fuzz_mutations import mutated
from hypothesis import strategies as st
from PIL import Image

ALLOWED = (ValueError,)  # what each parser here documents for bad input
raw_bytes = st.binary(max_size=2048)


# IDX -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdxCase:
    data: bytes
    magic: int
    expect: np.ndarray | None = None  # for built cases: the array a correct reader returns; None = must refuse
    built: bool = False


def _idx_bytes(magic: int, dims: list[int], body: bytes, gz: bool) -> bytes:
    data = struct.pack(f">I{len(dims)}I", magic, *dims) + body
    return gzip.compress(data, compresslevel=1) if gz else data


@st.composite
def idx_built(draw) -> IdxCase:
    want = draw(st.sampled_from([2051, 2049]))
    magic = draw(st.sampled_from([want, 2051, 2049]) | st.integers(0, (1 << 32) - 1))
    ndim = magic & 0xFF if magic in (2049, 2051) else draw(st.integers(0, 4))
    dims = draw(st.lists(st.sampled_from([0, 1, 2, 3, 28]) | st.integers(0, (1 << 32) - 1),
                         min_size=ndim, max_size=ndim))
    declared = math.prod(dims)
    shape = draw(st.sampled_from(["exact", "short", "long"]))
    n = min(declared, 4096) if shape == "exact" else draw(st.integers(0, 4096))
    body = draw(st.binary(min_size=n, max_size=n))
    gz = draw(st.booleans())
    # A shape whose non-zero sides multiply past the reader's limit is refused even with an empty body.
    good = magic == want and shape == "exact" and math.prod(max(d, 1) for d in dims) <= 4096
    expect = np.frombuffer(body, np.uint8).reshape(dims) if good else None
    refuse = magic != want or len(body) != declared
    if not good and not refuse:  # well formed but too big to build here: no oracle
        return IdxCase(_idx_bytes(magic, dims, body, gz), want)
    return IdxCase(_idx_bytes(magic, dims, body, gz), want, expect, built=True)


@cache
def idx_seeds() -> list[bytes]:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).tobytes()
    return [_idx_bytes(2051, [2, 28, 28], images, gz) for gz in (False, True)] + \
           [_idx_bytes(2049, [3], bytes([1, 2, 3]), gz) for gz in (False, True)]


def idx_cases() -> st.SearchStrategy[IdxCase]:
    loose = st.one_of(raw_bytes, mutated(idx_seeds()))
    return st.one_of(idx_built(), st.builds(IdxCase, loose, st.sampled_from([2051, 2049])))


def run_idx(case: IdxCase, workdir: Path) -> None:
    from latentspace.data.idx import parse_idx, read_idx

    path = workdir / "t10k-images-idx3-ubyte"
    path.write_bytes(case.data)
    readers = [lambda: read_idx(path, case.magic)]
    if case.data[:2] != b"\x1f\x8b":
        readers.append(lambda: parse_idx(case.data, path, case.magic))
    for read in readers:
        try:
            got = read()
        except ValueError:
            assert not (case.built and case.expect is not None), "refused a well-formed IDX file"
            raise
        assert not case.built or case.expect is not None, f"loaded a malformed IDX file as {got.shape}"
        if case.expect is not None:
            np.testing.assert_array_equal(got, case.expect)


# Images ----------------------------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


@cache
def image_seeds() -> list[bytes]:
    rgb = Image.merge("RGB", [Image.linear_gradient("L").resize((9, 7))] * 3)
    grey, ramp16 = rgb.convert("L"), Image.fromarray((np.arange(63, dtype=np.uint16) * 1000).reshape(7, 9))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the exif_transpose path
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return [
        _encode(rgb, "PNG"), _encode(rgb.convert("RGBA"), "PNG"), _encode(rgb.convert("P"), "PNG", transparency=3),
        _encode(grey, "PNG"), _encode(ramp16, "PNG"), _encode(grey.convert("1"), "PNG"),
        _encode(rgb.convert("LA"), "PNG"),
        _encode(rgb, "JPEG", quality=80), _encode(grey, "JPEG"), _encode(rgb, "JPEG", progressive=True),
        _encode(rgb, "JPEG", exif=exif), _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(rgb, "WEBP"), _encode(rgb.convert("RGBA"), "WEBP", lossless=True),
        _encode(rgb, "BMP"), _encode(rgb.convert("P"), "BMP"), _encode(grey.convert("1"), "BMP"),
        _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
    ]


@dataclass(frozen=True)
class ImageCase:
    data: bytes
    as_file: bool  # decode from a path (True) or from an in-memory file object


def image_cases() -> st.SearchStrategy[ImageCase]:
    data = st.one_of(raw_bytes, mutated(image_seeds(), png=True), st.sampled_from(image_seeds()))
    return st.builds(ImageCase, data, st.booleans())


def run_image(case: ImageCase, workdir: Path) -> None:
    from latentspace.data.decode import decode_image

    path = workdir / "x.png"
    path.write_bytes(case.data)
    got = decode_image(path if case.as_file else io.BytesIO(case.data), 8)
    assert got.shape == (3, 8, 8) and got.dtype == np.uint8, f"decoded to {got.dtype} {got.shape}"


# attributes.csv --------------------------------------------------------------------------------------------------

FILES = ("a.png", "b.png", "sub/c.png")
_cells = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "1.5", " 2 ", "nan", "inf", "-inf", "1e999", "1e-999", "n/a", "?",
                     "0x10", "1_000", "\u0661", "\u00a0", '"', ",", "\n", "\r", "a\x00b", "a.png", "sub/c.png",
                     "./b.png", "sub\\c.png"]),
    st.text(max_size=8), st.floats().map(repr), st.integers().map(str),
)


@st.composite
def csv_built(draw) -> bytes:
    n_cols = draw(st.integers(0, 4))
    key = draw(st.sampled_from(["filename", "file", "image", "image_id", "name", "FILE"]))
    header = [key] + draw(st.lists(st.sampled_from(["age", "smiling", "", "file", "x"]) | st.text(max_size=5),
                                   min_size=n_cols, max_size=n_cols))
    names = st.sampled_from(FILES + ("c.png", "missing.png", ""))
    rows = draw(st.lists(st.tuples(names, st.lists(_cells, min_size=n_cols, max_size=n_cols)), max_size=8))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for name, cells in rows:
        writer.writerow([name] + cells)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return out.getvalue().encode(encoding, errors="replace")


CSV_SEED = b"filename,smiling,age,note\na.png,1,1.5,x\nb.png,-1,2,y\nsub/c.png,1,,z\n"


def csv_cases() -> st.SearchStrategy[bytes]:
    return st.one_of(raw_bytes, mutated([CSV_SEED]), csv_built())


def run_csv(data: bytes, workdir: Path) -> None:
    from latentspace.data.attributes import read_attributes

    path = workdir / "attributes.csv"
    path.write_bytes(data)
    got = read_attributes(path, FILES)
    assert got.factors.shape == (len(FILES), len(got.factor_names)) and got.factors.dtype == np.float32
    assert not np.isinf(got.factors).any(), "an infinite factor value"
    assert got.has_row.shape == (len(FILES),) and set(got.factor_values) <= set(got.factor_names)


# config.json (open_run) ------------------------------------------------------------------------------------------


@cache
def config_seed() -> dict:
    from latentspace.models import ModelConfig
    from latentspace.train.config import TrainConfig

    return {"model": ModelConfig().to_dict(), "train": TrainConfig().to_dict(),
            "data": {"name": "mnist", "size": None, "channels": None, "data_dir": None, "seed": 0, "n": None},
            "latentspace_version": "0"}


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    # A fresh copy of each constant: later edits of the drawn config must not change the strategy's own list.
    | st.sampled_from([0, -1, 1 << 64, 1e308, "vae", "gaussian", [1, 28, 28], [3, 64, 64], [1, 28], {}]).map(
        lambda v: json.loads(json.dumps(v))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _nodes(obj: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every dict entry and list item of a JSON value."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        out.append(path + (key,))
        out += _nodes(value, path + (key,))
    return out


@st.composite
def config_built(draw) -> bytes:
    obj = json.loads(json.dumps(config_seed()))
    for _ in range(draw(st.integers(1, 4))):
        nodes = _nodes(obj)
        if not nodes:
            break
        where = draw(st.sampled_from(nodes))
        parent = obj
        for key in where[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[where[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(_json_values)
        else:
            parent[where[-1]] = draw(_json_values)
    return json.dumps(obj).encode()


def config_cases() -> st.SearchStrategy[bytes]:
    deep = st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n)  # nesting past the recursion limit
    seed = json.dumps(config_seed()).encode()
    return st.one_of(raw_bytes, mutated([seed]), config_built(), deep,
                     st.sampled_from([b"9" * 5000, b'"\\ud800"', b"NaN", b"[]", b"null", b"\xef\xbb\xbf{}"]))


def run_config(data: bytes, workdir: Path) -> None:
    from latentspace.train import open_run

    (workdir / "config.json").write_bytes(data)
    run = open_run(workdir)
    assert run.model_config is not None and run.train_config is not None


# safetensors -----------------------------------------------------------------------------------------------------


@cache
def safetensors_seeds() -> list[bytes]:
    from safetensors.numpy import save

    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.array([7], dtype=np.int64)}
    return [save(arrays), save(arrays, metadata={"format": "np"}), save({})]


@st.composite
def safetensors_built(draw) -> bytes:
    dtypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "C64", "X", ""]
    header, offset = {}, 0
    for name in draw(st.lists(st.text(min_size=1, max_size=4), max_size=3, unique=True)):
        shape = draw(st.lists(st.integers(0, 4) | st.integers(-1, 1 << 62), max_size=3))
        size = draw(st.integers(0, 64) | st.integers(-1, 1 << 62))
        header[name] = {"dtype": draw(st.sampled_from(dtypes)), "shape": shape, "data_offsets": [offset, offset + size]}
        offset += max(size, 0)
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers(),
                                                      max_size=2))
    text = json.dumps(header).encode()
    length = draw(st.just(len(text)) | st.integers(0, (1 << 64) - 1))
    return struct.pack("<Q", length) + text + draw(st.binary(max_size=256))


def safetensors_cases() -> st.SearchStrategy[tuple[bytes, str]]:
    data = st.one_of(raw_bytes, mutated(safetensors_seeds()), safetensors_built())
    return st.tuples(data, st.sampled_from(["numpy", "pt"]))


def run_safetensors(case: tuple[bytes, str], workdir: Path) -> None:
    from latentspace.utils.files import read_safetensors

    path = workdir / "model.safetensors"
    path.write_bytes(case[0])
    tensors, metadata = read_safetensors(path, framework=case[1])
    assert isinstance(tensors, dict) and all(isinstance(v, str) for v in metadata.values())


# codes .npz / .npy (load_codes) ----------------------------------------------------------------------------------

_array_dtypes = st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "complex64", "float16", "<U3",
                                 "S2", "O", ">f4", "V4", "datetime64[s]"])


@st.composite
def codes_built(draw) -> tuple[bytes, str]:
    arrays = {}
    for name in draw(st.lists(st.sampled_from(["z", "labels", "names", "factors", "x"]), max_size=3, unique=True)):
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
        dtype = np.dtype(draw(_array_dtypes))
        arrays[name] = np.zeros(shape, dtype=dtype)
    buf = io.BytesIO()
    suffix = draw(st.sampled_from([".npz", ".npy"]))
    if suffix == ".npy":
        np.save(buf, arrays.get("z", np.zeros((2, 3), np.float32)), allow_pickle=True)
    else:
        (np.savez_compressed if draw(st.booleans()) else np.savez)(buf, **arrays)
    return buf.getvalue(), suffix


@cache
def codes_seeds() -> list[bytes]:
    z = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = []
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, z=z, labels=np.arange(4))
        out.append(buf.getvalue())
    return out


def codes_cases() -> st.SearchStrategy[tuple[bytes, str]]:
    loose = st.tuples(st.one_of(raw_bytes, mutated(codes_seeds())), st.sampled_from([".npz", ".npy"]))
    return st.one_of(loose, codes_built())


def run_codes(case: tuple[bytes, str], workdir: Path) -> None:
    from latentspace.cli.encode import load_codes

    path = workdir / f"codes{case[1]}"
    path.write_bytes(case[0])
    got = load_codes(path)
    assert got["z"].dtype == np.float32 and got["z"].ndim == 2


# The registry ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One parser: ``cases()`` builds its strategy; ``run(case, empty_folder)`` calls it on one case."""

    name: str
    parser: str
    modules: tuple[str, ...]  # imported before the first case, so import time is not taken for a slow case
    cases: Callable[[], st.SearchStrategy]
    run: Callable[[Any, Path], None]


TARGETS = {t.name: t for t in (
    Target("idx", "read_idx / parse_idx", ("latentspace.data.idx",), idx_cases, run_idx),
    Target("image", "decode_image", ("latentspace.data.decode",), image_cases, run_image),
    Target("attributes", "read_attributes", ("latentspace.data.attributes",), csv_cases, run_csv),
    Target("config", "open_run (config.json)", ("latentspace.train",), config_cases, run_config),
    Target("safetensors", "read_safetensors", ("latentspace.utils.files", "safetensors.torch"),
           safetensors_cases, run_safetensors),
    Target("codes", "load_codes", ("latentspace.cli.encode",), codes_cases, run_codes),
)}


def outcome(target: Target, case: Any, workdir: Path) -> str | None:
    """None when the parser loaded ``case`` correctly or refused it with a one-line ValueError; otherwise
    the crash as one line, "<kind> at <file>:<line>: <message>", where the part before ": " names the bug."""
    try:
        target.run(case, workdir)
    except ALLOWED as e:
        if "\n" not in str(e).strip():
            return None
        return f"multi-line ValueError at {_where(e)}: {str(e)[:200]!r}"
    except Exception as e:  # anything else is what the fuzzer is looking for
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        return f"{type(e).__name__} at {_where(e)}: {text}"
    return None


def crash_kind(crash: str) -> str:
    """The bug a crash line names, without the case-specific message."""
    return crash.split(": ", 1)[0]


def _where(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"
