"""A local Label Studio OSS server: install it into its own virtual environment and run it on 127.0.0.1.

Label Studio is large (~1 GB installed, ~90 s to install) and pins its own Django stack, so it never
goes into crowdbridge's environment: it lives in a venv cached outside the clone
(``~/.cache/crowdbridge/label-studio-venv`` by default) and is reused on later runs. A completed
install leaves a ``.crowdbridge-complete`` marker; a half-finished one is thrown away and redone.

The start recipe is the one measured in ``shared/vendors/label-studio.md`` §2: a pinned admin user and
legacy token, SSRF protection off (so webhooks to a 127.0.0.1 listener are allowed), no outbound
calls (version check, Sentry, analytics), bound to 127.0.0.1 only.

``ensure_local_server(cache_dir, port)`` is what the tests and ``crowdbridge demo --vendor
label_studio`` call; ``.stop()`` on the handle stops the server it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["LabelStudioUnavailable", "LocalServer", "default_cache_dir", "ensure_local_server", "install"]

ADMIN_EMAIL = "admin@crowdbridge.local"
ADMIN_PASSWORD = "crowdbridge-admin-pass-123"
ADMIN_TOKEN = "cb-ls-token-0123456789abcdef0123"  # legacy token: 6..40 characters
SECRET_KEY = "crowdbridge-local-label-studio-secret"  # pinned: it signs JWT personal access tokens
MARKER = ".crowdbridge-complete"
REQUIREMENT = os.environ.get("CROWDBRIDGE_LABEL_STUDIO_REQUIREMENT", "label-studio")


class LabelStudioUnavailable(RuntimeError):
    """Label Studio could not be installed or started; the message says why and what to do."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("CROWDBRIDGE_CACHE_DIR", Path.home() / ".cache" / "crowdbridge"))


def _venv(cache_dir: Path) -> Path:
    return cache_dir / "label-studio-venv"


def install(cache_dir: Path | None = None, *, timeout: float = 900.0, log: Path | None = None) -> Path:
    """Create the venv and ``pip install label-studio`` into it unless a completed one exists.

    Returns the venv's ``label-studio`` executable. Raises :class:`LabelStudioUnavailable` with
    the tail of pip's output when the install fails.
    """
    venv = _venv(cache_dir or default_cache_dir())
    exe = venv / "bin" / "label-studio"
    if (venv / MARKER).exists() and exe.exists():
        return exe
    if venv.exists():
        shutil.rmtree(venv)  # a half-finished install: start again
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = log or venv.parent / "label-studio-install.log"
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", REQUIREMENT]]
    deadline = time.monotonic() + timeout
    with open(log, "wb") as out:
        for step in steps:
            try:
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=max(1.0, deadline - time.monotonic()), check=False)
            except subprocess.TimeoutExpired as exc:
                raise LabelStudioUnavailable(f"installing Label Studio timed out after {timeout:.0f}s; "
                                             f"see {log}") from exc
            if done.returncode != 0:
                tail = log.read_text(errors="replace")[-1500:]
                raise LabelStudioUnavailable(f"`{' '.join(step)}` failed with exit code {done.returncode}; "
                                             f"last output ({log}):\n{tail}")
    (venv / MARKER).write_text(REQUIREMENT + "\n")
    return exe


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalServer:
    """A running Label Studio. ``api_key`` is the admin's legacy token (``Authorization: Token ...``)."""

    url: str
    api_key: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server this handle started (its whole process group); a no-op for a reused one."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        response = httpx.get(f"{url}/api/projects/", headers={"Authorization": f"Token {ADMIN_TOKEN}"},
                             timeout=3.0)
        return response.status_code == 200
    return False


def ensure_local_server(cache_dir: Path | None = None, port: int = 18089, *, data_dir: Path | None = None,
                        install_if_missing: bool = True, start_timeout: float = 120.0) -> LocalServer:
    """Install (once) and start Label Studio on ``127.0.0.1:port``; reuse one already answering there.

    ``data_dir`` holds its SQLite database (default ``<cache_dir>/label-studio-data``). With
    ``install_if_missing=False`` a missing install raises :class:`LabelStudioUnavailable` saying how to
    install it instead of installing.
    """
    cache_dir = cache_dir or default_cache_dir()
    url = f"http://127.0.0.1:{port}"
    data_dir = data_dir or cache_dir / "label-studio-data"
    log_path = data_dir / "label-studio.log"
    if _ready(url):
        return LocalServer(url=url, api_key=ADMIN_TOKEN, data_dir=data_dir, log_path=log_path)
    venv = _venv(cache_dir)
    if install_if_missing:
        exe = install(cache_dir)
    else:
        exe = venv / "bin" / "label-studio"
        if not ((venv / MARKER).exists() and exe.exists()):
            raise LabelStudioUnavailable(
                f"Label Studio is not installed in {venv}. Install it with:\n"
                f"  python -m venv {venv} && {venv}/bin/pip install label-studio && touch {venv}/{MARKER}\n"
                f"or call connectors.label_studio.install()")
    if not _port_free(port):
        raise LabelStudioUnavailable(f"port {port} on 127.0.0.1 is taken by something that is not Label Studio "
                                     "(Label Studio would silently move to another port); pick another port")
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))}
    for bare in ("USERNAME", "PASSWORD", "PORT", "HOST"):  # LS reads bare names too (label-studio.md §2)
        env.pop(bare, None)
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "DJANGO_DB": "sqlite",
        "DATABASE_NAME": str(data_dir / "label_studio.sqlite3"),
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL, "LABEL_STUDIO_PASSWORD": ADMIN_PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": ADMIN_TOKEN, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "SSRF_PROTECTION_ENABLED": "false",
        "LATEST_VERSION_CHECK": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false", "SECRET_KEY": SECRET_KEY, "LOG_LEVEL": "WARNING",
    })
    args = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--database", str(data_dir / "label_studio.sqlite3"),
            "--enable-legacy-api-token"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = LocalServer(url=url, api_key=ADMIN_TOKEN, data_dir=data_dir, log_path=log_path, process=proc)
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise LabelStudioUnavailable(f"Label Studio exited with {proc.returncode} while starting; log tail:\n"
                                         f"{tail}")
        if _ready(url):
            return server
        time.sleep(0.5)
    server.stop()
    raise LabelStudioUnavailable(f"Label Studio did not answer on {url} within {start_timeout:.0f}s; see {log_path}")
