"""Shared fixtures: real data (or a clear skip), an isolated cache, and no network for any test."""
from __future__ import annotations

import os

# Before torch loads: idle OpenMP threads sleep instead of spinning, so tests that share two cores with other
# processes (CI's own, a second pytest) do not slow each other down tenfold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`'s parallel pass: one worker per core, one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")
from pathlib import Path

import pytest

from latentspace.data import idx

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    """$LATENTSPACE_DATA, else ../shared/data beside the repository; None when neither exists."""
    env = os.environ.get("LATENTSPACE_DATA")
    root = Path(env).expanduser() if env else REPO.parent / "shared" / "data"
    return root if root.is_dir() else None


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    """Every test sees the real data root, a throwaway cache, and no download mirrors."""
    root = data_root()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENTSPACE_CACHE", str(tmp_path_factory.mktemp("latentspace-cache")))
        if root is not None:
            mp.setenv("LATENTSPACE_DATA", str(root))
        # Tests never touch the network: a test that wants the download path passes mirrors= itself.
        mp.setattr(idx, "MIRRORS", {name: () for name in idx.MIRRORS})
        yield


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the four real MNIST IDX files, or skip the test saying where they were looked for."""
    root = data_root()
    folder = root / "mnist" if root is not None else REPO.parent / "shared" / "data" / "mnist"
    missing = [s for s in idx.ALL_FILES if idx.find_file(s, [folder]) is None]
    if missing:
        pytest.skip(f"real MNIST not found: {', '.join(missing)} absent from {folder} (set LATENTSPACE_DATA)")
    return folder


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """The real MNIST test split (10,000 images, 1x28x28), loaded once per session; do not modify it."""
    return idx.load_idx("mnist", split="test", data_dir=mnist_dir)


@pytest.fixture
def quick_evaluator(monkeypatch):
    """Every run's evaluator trains for one epoch (tests/quick.py), for modules that opt in."""
    from quick import quick_evaluator as one_epoch

    with one_epoch(monkeypatch):
        yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core machine: a second torch thread only waits for the first. Modules opt in
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- headless Debian Chromium through Playwright, for the report's and the explorer's browser tests ----------
# Defined once here and module-scoped: two sync_playwright instances in one thread refuse to start, and the
# event loop a running one keeps in the main thread would break asyncio.run in later, unrelated tests.
# Under CI=true a missing browser is a failure, never a skip: .ci/run installs /usr/bin/chromium.

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    """A launched Chromium (Playwright Browser); skipped where it cannot run, except under CI=true."""
    why = _unavailable()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI=true: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


def assert_page_loads_cleanly(browser, path: Path, images: int | None = None) -> None:
    """The checks every page we write passes, at 1280 and 375 px: no console error, nothing fetched, every image
    decoded (``images`` of them when given), no sideways scroll."""
    errors, requests = [], []
    for width in (1280, 375):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        widths = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert widths and min(widths) > 0
        assert images is None or len(widths) == images, widths
        scroll = page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll <= width, f"{scroll} px wide at a {width} px viewport"
        page.close()
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if not u.startswith("data:")]


@pytest.fixture(scope="module")
def small_conditional():
    """A conditional prior small enough for the tests (the default's 4,000 steps take a minute); modules opt in."""
    from latentspace.api import drawing
    from latentspace.latent.diffusion import DiffusionConfig

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(drawing, "conditional_config",
                   lambda d: DiffusionConfig(latent_dim=d, hidden=128, train_steps=800, batch_size=256))
        yield
