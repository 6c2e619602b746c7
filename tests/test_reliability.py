"""Issue 11's findings, one regression test each: exit code, the one line the user reads, and no file changed
where nothing should have. The commands run through the console entry point (cli.main.main), so the test sees
exactly what a user sees; start-up and locking cases run the real console script in a subprocess."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from latentspace import api
from latentspace.cli.main import main
from latentspace.train import open_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ("--data", "shapes", "--n", "240", "--size", "16", "--latent-dim", "2", "--batch-size", "60",
        "--threads", "1", "--device", "cpu")
SCRIPT = [sys.executable, "-c", "from latentspace.cli.entry import main; main()"]


def cli(capsys, monkeypatch, *args) -> tuple[int, str]:
    """Run `latentspace ARGS` in-process through main(); (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["latentspace", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main()
    return int(stop.value.code or 0), capsys.readouterr().err


def refused(capsys, monkeypatch, *args, code: int = 2) -> str:
    """The single error line of a command that must fail with ``code`` (progress bars may precede it)."""
    rc, err = cli(capsys, monkeypatch, *args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, err
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: ") and sum(ln.startswith("error") for ln in lines) == 1, err
    return lines[-1]


def state(folder: Path) -> dict[str, str]:
    """Every file of a folder by content hash and mtime: equal states mean nothing was touched."""
    return {str(p.relative_to(folder)): f"{hashlib.sha256(p.read_bytes()).hexdigest()}:{p.stat().st_mtime_ns}"
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch tiny run; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("rel") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["latentspace", "train", *TINY, "--epochs", "2", "--out", str(out)])
        with pytest.raises(SystemExit) as stop:
            main()
    assert stop.value.code in (0, None)
    return out


@pytest.fixture
def run_dir(trained, tmp_path):
    dest = tmp_path / "run"
    subprocess.run(["cp", "-a", str(trained), str(dest)], check=True)
    return dest


def flip(path: Path, offset_from_end: int = 64) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


# -- 1: one writer per run folder ------------------------------------------------------------------------------
def test_a_second_writer_is_refused_while_the_first_trains(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([*SCRIPT, "train", "--data", "shapes", "--n", "4000", "--size", "32", "--epochs", "50",
                              "--threads", "1", "--device", "cpu", "--out", str(out)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (out / "config.json").exists(), "the first training never started"
        second = subprocess.run([*SCRIPT, "train", "--resume", "--out", str(out), "--epochs", "50"],
                                env=env, capture_output=True, text=True, timeout=120)
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    assert f"in use by latentspace train (pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1


def test_two_fresh_trainings_on_one_folder_leave_one_consistent_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [*SCRIPT, "train", *TINY, "--epochs", "2", "--out", str(out)]
    procs = [subprocess.Popen([*args, "--seed", str(seed)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=180), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "in use by" in loser or "holds a run" in loser
    run = open_run(out)
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    winner_seed = 1 if results[0][0] == 0 else 2
    assert run.train_config.seed == run.data_info["seed"] == winner_seed


# -- 3, 4, 5: resume refuses what it cannot do exactly, and changes nothing when it refuses ------------------------
def test_resume_without_trainer_state_is_refused(run_dir, capsys, monkeypatch):
    (run_dir / "trainer_state.safetensors").unlink()
    before = state(run_dir)
    line = refused(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "3")
    assert "trainer_state.safetensors" in line and "missing" in line
    assert state(run_dir) == before


def test_flipped_weight_bytes_are_refused_by_every_reader(run_dir, capsys, monkeypatch, tmp_path):
    flip(run_dir / "model.safetensors")
    line = refused(capsys, monkeypatch, "encode", run_dir, "test", "--out", tmp_path / "codes.npz")
    assert "model.safetensors: checksum mismatch" in line
    assert not (tmp_path / "codes.npz").exists()


def test_flipped_trainer_state_bytes_refuse_the_resume(run_dir, capsys, monkeypatch):
    flip(run_dir / "trainer_state.safetensors")
    before = state(run_dir)
    line = refused(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "3")
    assert "trainer_state.safetensors: checksum mismatch" in line
    assert state(run_dir) == before


def test_a_refused_resume_leaves_the_run_resumable(run_dir, capsys, monkeypatch):
    before = state(run_dir)
    line = refused(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "1")
    assert "epochs=1" in line and "2 epochs" in line
    assert state(run_dir) == before
    rc, err = cli(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "3", "--threads", "1")
    assert rc == 0, err
    assert [r["epoch"] for r in open_run(run_dir).metrics()] == [1, 2, 3]


# -- 6: non-finite options and codes are refused at the boundary ---------------------------------------------------
@pytest.mark.parametrize("flag,value", [("--beta", "nan"), ("--beta", "inf"), ("--lr", "nan"), ("--size", "0")])
def test_bad_training_options_are_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, flag, value):
    out = tmp_path / "run"
    line = refused(capsys, monkeypatch, "train", "--data", "shapes", flag, value, "--out", out)
    assert line.startswith(f"error: {flag} {value}")
    assert not out.exists()


def test_a_diverging_run_stops_with_the_last_good_checkpoint_intact(run_dir, capsys, monkeypatch):
    config = json.loads((run_dir / "config.json").read_text())
    config["train"]["lr"] = 1e9  # as if trained with --lr 1e9: the resumed epoch diverges at once
    (run_dir / "config.json").write_text(json.dumps(config))
    weights = (run_dir / "model.safetensors").read_bytes()
    line = refused(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "3", "--threads", "1")
    assert "not finite" in line or "nan" in line.lower()
    assert (run_dir / "model.safetensors").read_bytes() == weights
    assert [r["epoch"] for r in open_run(run_dir).metrics()] == [1, 2]


def test_non_finite_codes_are_refused_by_decode(run_dir, capsys, monkeypatch, tmp_path):
    codes = tmp_path / "nan.npz"
    np.savez(codes, z=np.array([[0.0, 1.0], [np.nan, 0.0]], np.float32))
    line = refused(capsys, monkeypatch, "decode", run_dir, codes, "--out", tmp_path / "out")
    assert "row 1 holds NaN or inf" in line
    assert not (tmp_path / "out").exists()


def test_non_finite_edit_strengths_are_refused(run_dir, capsys, monkeypatch, tmp_path):
    rc, err = cli(capsys, monkeypatch, "edit", run_dir, "3", "--attr", "shape=circle", "--strengths=nan,inf",
                  "--out", tmp_path / "edit.png")
    assert rc == 2 and "expected finite numbers" in err and "Traceback" not in err
    assert not (tmp_path / "edit.png").exists()


# -- 8: directions fitted before a resumed training are not used after it --------------------------------------------
def test_directions_go_stale_when_training_continues(run_dir, capsys, monkeypatch, tmp_path):
    assert cli(capsys, monkeypatch, "attributes", run_dir, "--device", "cpu")[0] == 0
    assert api.saved_directions(open_run(run_dir)) is not None
    assert cli(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "3", "--threads", "1")[0] == 0
    assert api.saved_directions(open_run(run_dir)) is None
    model = api.load(run_dir)
    refit = api.run_directions(open_run(run_dir), model)  # refits for the new weights and stores them
    assert api.saved_directions(open_run(run_dir)) is not None
    assert {d.name for d in refit} == {d.name for d in api.saved_directions(open_run(run_dir))}


# -- 11: damaged inputs and odd values give one line ----------------------------------------------------------------
@pytest.mark.parametrize("change,expected", [
    (lambda c: c["model"].update(latent_dim=16.0), "latent_dim must be an integer"),
    (lambda c: c.update(data=None), "has no 'data' entry"),
    (lambda c: c.update(data=[1]), "'data' must be an object or null"),
    (lambda c: c["model"].update(beta=None), "beta must be a finite number"),
])
def test_damaged_config_json_gives_one_line(run_dir, capsys, monkeypatch, change, expected):
    config = json.loads((run_dir / "config.json").read_text())
    change(config)
    (run_dir / "config.json").write_text(json.dumps(config))
    before = state(run_dir)
    line = refused(capsys, monkeypatch, "train", "--resume", "--out", run_dir, "--epochs", "3")
    assert "config.json" in line and expected in line
    assert state(run_dir) == before


@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b"", b"\x93NUMPY garbage"])
def test_a_corrupt_codes_file_gives_one_line(run_dir, capsys, monkeypatch, tmp_path, content):
    codes = tmp_path / "codes.npz"
    codes.write_bytes(content)
    line = refused(capsys, monkeypatch, "decode", run_dir, codes, "--out", tmp_path / "out")
    assert f"{codes}: not a readable .npz/.npy codes file" in line


def test_export_onto_an_existing_file_gives_one_line(run_dir, capsys, monkeypatch, tmp_path):
    target = tmp_path / "logs"
    target.write_text("keep me")
    line = refused(capsys, monkeypatch, "export", run_dir, "--tensorboard", target)
    assert str(target) in line
    assert target.read_text() == "keep me"


def test_absurd_thread_counts_are_refused(tmp_path, capsys, monkeypatch):
    line = refused(capsys, monkeypatch, "train", "--data", "shapes", "--threads", "100000", "--out", tmp_path / "r")
    assert "--threads 100000: expected 1.." in line


@pytest.mark.parametrize("delay", [0.3, 0.9, 1.5])  # imports, torch loading, the verb starting
def test_ctrl_c_during_start_up_is_one_line(tmp_path, delay):
    proc = subprocess.Popen([*SCRIPT, "train", *TINY, "--epochs", "50", "--out", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in (out + err)


# -- 2, 7, 9, 10, 11 through the command line: the data layer's refusals reach the user as one line -------------
def _folder(tmp_path: Path, n: int = 3) -> Path:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.mark.parametrize("csv,expected", [
    ("filename,age\np0.png,3\np1.png,n/a\np2.png,5\n", "line 3, column 'age': 'n/a' is not a number"),
    ("filename,age\np0.png,3\np1.png,1e999\np2.png,5\n", "1e999"),
])
def test_a_bad_attributes_cell_is_one_line_and_trains_nothing(tmp_path, capsys, monkeypatch, csv, expected):
    folder = _folder(tmp_path)
    (folder / "attributes.csv").write_text(csv)
    out = tmp_path / "run"
    line = refused(capsys, monkeypatch, "train", "--data", folder, "--size", "16", "--out", out)
    assert "attributes.csv" in line and expected in line
    assert not out.exists()


def test_non_utf8_attributes_name_the_file(tmp_path, capsys, monkeypatch):
    folder = _folder(tmp_path)
    (folder / "attributes.csv").write_bytes(b"filename,age\np0.png,\xff\xfe\n")
    line = refused(capsys, monkeypatch, "data", "info", folder)
    assert f"{folder / 'attributes.csv'}" in line


def test_a_fifo_and_broken_links_are_skipped_and_counted_by_the_command(tmp_path, capsys, monkeypatch, caplog):
    folder = _folder(tmp_path)
    os.mkfifo(folder / "x.png")
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    rc, err = cli(capsys, monkeypatch, "data", "info", folder, "--size", "16")
    assert rc == 0, err
    assert "skipped 3 of 6 files" in caplog.text + err


def test_an_idx_bomb_is_refused_at_once(tmp_path, capsys, monkeypatch):
    import gzip

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    header = (2051).to_bytes(4, "big") + (60000).to_bytes(4, "big") + (1000).to_bytes(4, "big") * 2
    with gzip.open(mnist / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + bytes(1 << 20))
    started = time.perf_counter()
    line = refused(capsys, monkeypatch, "data", "info", "mnist", "--data-dir", mnist)
    assert time.perf_counter() - started < 10
    assert "train-images-idx3-ubyte.gz" in line
