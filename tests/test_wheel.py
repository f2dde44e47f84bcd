"""The installed package runs its main job: build the wheel, install it into a fresh venv that cannot see this
checkout, and from another directory start the local stack, sign in and ask for the documents.

The fresh venv gets the wheel's dependencies without a download: a ``.pth`` file points at a folder of symlinks
to this test venv's installed distributions, minus obo-console itself (its editable hook included), and pip
installs the wheel with ``--no-index``, so it checks that every dependency the wheel declares is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_cli import wait_for_file

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs"


def _copy_source(target: Path) -> Path:
    """What a clean clone holds for the build (no build/, egg-info or caches of this checkout)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("console", "mcp_server", "configs"):
        shutil.copytree(REPO / name, target / name, symlinks=True, ignore=ignore)
    return target


def _dependencies_folder(target: Path) -> Path:
    """Symlinks to everything installed in this venv except obo-console (and any .pth hook, which only a site
    directory would run anyway)."""
    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("obo_console", "__editable__", "_obo_console")) or name.endswith(".pth"):
            continue
        (target / entry.name).symlink_to(entry)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin folder of a fresh venv with the freshly built wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    (work / "source").mkdir()
    source = _copy_source(work / "source")
    dist = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        cwd=source,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("obo_console-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(fresh_site) / "test-deps.pth").write_text(f"{_dependencies_folder(work / 'deps')}\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-index",
            "--no-cache-dir",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    # Only the wheel was installed: pip found every dependency it declares already there.
    present = {p.name for p in Path(fresh_site).iterdir()} - {"__pycache__", "test-deps.pth"}
    assert present == {"console", "mcp_server", wheel.name.split("-py3")[0] + ".dist-info"}, present
    yield venv / "bin"


def test_the_wheel_holds_the_default_configs_and_their_schema(installed: Path) -> None:
    probe = "import console, console.core.configs.schema as s; print(console.__file__); print(s.SHIPPED_CONFIGS_DIR)"
    out = subprocess.run(
        [str(installed / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=installed.parent,
    ).stdout.split("\n")
    module, shipped = Path(out[0]), Path(out[1])
    assert (
        module.is_relative_to(installed.parent) and "site-packages" in module.parts
    )  # the wheel, not this checkout
    assert shipped.is_dir() and not shipped.is_symlink()
    assert sorted(p.name for p in shipped.glob("*.json")) == sorted(p.name for p in SHIPPED.glob("*.json"))
    for path in SHIPPED.glob("**/*.json"):
        assert (shipped / path.relative_to(SHIPPED)).read_bytes() == path.read_bytes()


def test_installed_server_login_and_ask_from_another_directory(installed: Path, tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBO_CONSOLE_", "PYTHON"))}
    env |= {"OBO_CONSOLE_KEYRING_BACKEND": "file", "PATH": f"{installed}{os.pathsep}{env.get('PATH', '')}"}

    def obo(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["obo-console", "--home", str(home), *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=elsewhere,
            timeout=180,
        )

    ports = ["--port", "0", "--identity-port", "0", "--search-port", "0", "--calculator-port", "0"]
    server = subprocess.Popen(
        ["obo-console", "--home", str(home), "server", *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    try:
        wait_for_file(home / "local-stack.json", server)
        login = obo("login", "--as", "alice")
        assert login.returncode == 0, login.stderr
        ask = obo("ask", "show my documents", "--quiet")
        assert ask.returncode == 0, ask.stderr
        assert "Q3 budget forecast" in ask.stdout and "Alice's performance review" in ask.stdout
        # The configs came from the per-user copy in the data directory, made on first use from the wheel's.
        user_configs = home / "configs"
        assert sorted(p.name for p in user_configs.glob("*.json")) == sorted(
            p.name for p in SHIPPED.glob("*.json")
        )
        assert (user_configs / "schema" / "agent_config.schema.json").is_file()
        # It is the user's to edit: an edited config is what runs next.
        documents = json.loads((user_configs / "documents.json").read_text())
        (user_configs / "documents.json").write_text(json.dumps(documents | {"name": "My Library"}))
        listing = obo("configs", "list", "--json")
        assert listing.returncode == 0, listing.stderr
        by_key = {c["key"]: c for c in json.loads(listing.stdout)["configs"]}
        assert by_key["documents"]["name"] == "My Library"
        assert by_key["documents"]["source"] == f"file:{user_configs / 'documents.json'}"
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert not list(elsewhere.iterdir())  # nothing written to the working directory
