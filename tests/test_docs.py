"""The documentation builds with warnings as errors and its pages render in headless Chromium."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sb3_lsp

ROOT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# On this closed network Chromium's background connections fail noisily: switch them off.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require(available: bool, what: str) -> None:
    """Skip where a developer lacks a docs tool; CI installs them all, so there it fails instead."""
    if not available:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing in CI (.ci/run installs it)")
        pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(shutil.which("sphinx-build") is not None or _importable("sphinx"), "sphinx (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("docs") / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def render(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after Chromium loaded it (and ran its scripts)."""
    require(CHROMIUM is not None, "Debian's chromium (apt-get install chromium)")
    profile = tmp_path / f"profile-{page.stem}"
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_index_page_renders_with_its_title_and_a_code_block(built_docs: Path, tmp_path: Path) -> None:
    dom = render(built_docs / "index.html", tmp_path)
    assert f"<title>sb3-lsp {sb3_lsp.__version__}</title>" in dom and "Latent Space Policies" in dom
    assert 'class="highlight-python' in dom  # a highlighted code block
    assert 'href="api.html"' in dom and 'href="benchmarks.html"' in dom  # the navigation
    # and it is drawn: a screenshot of the page is not blank
    shot = tmp_path / "index.png"
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'shot'}",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            (built_docs / "index.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000


def test_api_page_has_an_entry_for_lsppolicy(built_docs: Path, tmp_path: Path) -> None:
    dom = render(built_docs / "api.html", tmp_path)
    assert "<title>API reference - sb3-lsp" in dom
    assert 'id="sb3_lsp.LSPPolicy"' in dom and 'id="sb3_lsp.MultiInputLSPPolicy"' in dom
    assert 'id="sb3_lsp.LSPActor.action_log_prob"' in dom
    assert "Number of affine coupling layers" in dom  # the :param: docstrings became the entry's text
