"""End-to-end browser tests: a real JupyterLab driven by Debian's Chromium through Playwright.

Run them with ``make test-browser`` (or ``python -m pytest tests/browser``). They are not part of
``make test``: the Makefile passes ``--ignore=tests/browser`` there, and ``pytest_ignore_collect``
below leaves this folder out of any run that does not name it, so ``pytest tests`` stays a fast,
browser-free run. When the folder is named, nothing is skipped: a missing Chromium, a server that
does not start or a notebook that misbehaves is a failure.

Isolation. JupyterLab is started from the running interpreter (the course environment) on a free
loopback port with a random token; its settings, workspaces, runtime, config and data directories
are fresh temporary directories, and it serves a temporary *copy* of notebooks/, so running cells
and saving never touches the learner's files or JupyterLab set-up. Chromium gets a fresh profile.
Nothing is downloaded or installed: Chromium must already be at /usr/bin/chromium.

Clean-up. The server, its kernels and the browser are stopped however the session ends; the
server's port and the processes it started are checked afterwards.

Environment knobs (all optional):
  ISODL_BROWSER_NOTEBOOKS   folder holding the NN_*.ipynb notebooks to test (default: notebooks/)
  ISODL_BROWSER_TIMEOUT     the hang guard, in seconds, for every wait on a kernel: Run All Cells of a notebook, its
                            kernel's start, a figure's redraw (default: 600, like nbval's per-cell timeout; a guard
                            against hangs, not a budget: `make course` measures and reports the run times)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "sudo apt-get install chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT = 60
SHUTDOWN_TIMEOUT = 20

# JupyterLab user settings for the throw-away settings directory: no news/update prompts (a toast
# could cover the figures in screenshots; there is no network anyway) and every cell attached to
# the DOM, so that the tests can see all cells' prompts and outputs without scrolling.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def notebook_dir() -> Path:
    return Path(os.environ.get("ISODL_BROWSER_NOTEBOOKS", ROOT / "notebooks")).resolve()


def run_all_timeout() -> float:
    """The hang guard for waits on a kernel (ISODL_BROWSER_TIMEOUT, default 600 s)."""
    return float(os.environ.get("ISODL_BROWSER_TIMEOUT", "600"))


# ---------------------------------------------------------------------------------------------
# Collection guard: only collect tests/browser when the command line names it (or a file in it).
# ---------------------------------------------------------------------------------------------


def _browser_tests_requested(config) -> bool:
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / str(arg).split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    if (path == HERE or HERE in path.parents) and not _browser_tests_requested(config):
        return True
    return None


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> list:
    import psutil  # a dependency of ipykernel, so always in the course environment

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(procs: list) -> list:
    """SIGKILL the given psutil processes that are still alive; return those that survive."""
    import psutil

    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=5)
    return still


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------------------------------------
# JupyterLab server
# ---------------------------------------------------------------------------------------------


@dataclass
class LabServer:
    port: int
    token: str
    root_dir: Path  # the temporary copy of notebooks/ the server serves
    tmp: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    kernel_pids: set = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        return f"{self.base_url}/lab/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str, timeout: float = 10):
        req = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "PUT") else None,
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self) -> str:
        return _log_tail(self.log_path)

    def remember_kernels(self) -> None:
        """Record the server's child processes (kernels run in their own sessions, see stop())."""
        if self.proc is not None:
            self.kernel_pids.update(p.pid for p in _descendants(self.proc.pid))

    def shut_down_kernels(self, timeout: float = 15) -> None:
        """Delete every session and kernel, and wait until the server lists none."""
        self.remember_kernels()
        for s in self.api("GET", "/api/sessions"):
            try:
                self.api("DELETE", f"/api/sessions/{s['id']}")
            except urllib.error.HTTPError:
                pass
        for k in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", f"/api/kernels/{k['id']}")
            except urllib.error.HTTPError:
                pass
        deadline = time.monotonic() + timeout
        while self.api("GET", "/api/kernels") and time.monotonic() < deadline:
            time.sleep(0.2)

    def start(self) -> None:
        env = dict(os.environ)
        # The browser test shows what a learner sees in `make lab`: the live widget only, with the
        # kernel's default (inline) backend. tests/conftest.py sets both of these for pytest itself.
        for key in ("ISODL_HEADLESS", "MPLBACKEND", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN"):
            env.pop(key, None)
        dirs = {}
        for name in ("settings", "workspaces", "runtime", "config", "data", "ipython"):
            dirs[name] = self.tmp / name
            dirs[name].mkdir(parents=True, exist_ok=True)
        for rel, values in LAB_SETTINGS.items():
            f = dirs["settings"] / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env.update(
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            IPYTHONDIR=str(dirs["ipython"]),
            JUPYTER_TOKEN=self.token,  # in the environment, not on the command line (ps shows that)
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI containers run as root
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() can signal it as a whole
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"JupyterLab did not answer on port {self.port} within {SERVER_START_TIMEOUT} s:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self, check_port: bool = True) -> list[str]:
        """Stop the server, its kernels and anything else it started; return what went wrong."""
        problems = []
        if self.proc is None:
            return problems
        self.remember_kernels()
        if self.proc.poll() is None:
            try:  # graceful: the server shuts its kernels down itself
                self.api("POST", "/api/shutdown", timeout=5)
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            try:
                self.proc.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            problems.append(f"JupyterLab (pid {self.proc.pid}) survived SIGKILL")
        try:  # anything left in its process group (it was the group leader)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        # Kernels are started in sessions of their own, so the process-group signal misses them.
        import psutil

        procs = []
        for pid in self.kernel_pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        leftovers = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if leftovers:
            survivors = _kill_all(leftovers)
            if survivors:
                problems.append(f"processes started by JupyterLab survive: {[p.pid for p in survivors]}")
        deadline = time.monotonic() + 5
        while check_port and port_is_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        if check_port and port_is_open(self.port):
            problems.append(f"port {self.port} still accepts connections after JupyterLab stopped")
        return problems


def pytest_generate_tests(metafunc):
    """Parametrise ``notebook`` over every notebooks/NN_*.ipynb, found anew on each run."""
    if "notebook" in metafunc.fixturenames:
        paths = course_notebooks_in(notebook_dir())
        metafunc.parametrize("notebook", paths, ids=[p.name for p in paths])


def course_notebooks_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def course_notebooks() -> list[Path]:
    return course_notebooks_in(notebook_dir())


@pytest.fixture(scope="session")
def run_timeout() -> float:
    return run_all_timeout()


_TIMINGS: list[str] = []


@pytest.fixture(scope="session")
def browser_timings() -> list[str]:
    """Lines for the summary at the end of the run (where the minutes went, per notebook)."""
    return _TIMINGS


def pytest_terminal_summary(terminalreporter):
    if _TIMINGS:
        terminalreporter.section("browser test timings")
        for line in _TIMINGS:
            terminalreporter.write_line(line)


@dataclass
class LabTab:
    page: object  # playwright.sync_api.Page
    server: LabServer
    console_errors: list = field(default_factory=list)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}, which is missing. Install it with:\n"
            f"    {INSTALL_HINT}\n"
            "(the tests never download a browser themselves)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A JupyterLab server on a copy of notebooks/, isolated from the user's Jupyter set-up."""
    tmp = tmp_path_factory.mktemp("lab")
    src = notebook_dir()
    root = tmp / "notebooks"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    server = None
    last_error = None
    try:
        for _attempt in range(3):  # the free port can be taken between choosing it and binding it
            server = LabServer(
                port=free_port(), token=secrets.token_hex(24), root_dir=root, tmp=tmp, log_path=tmp / "jupyterlab.log"
            )
            try:
                server.start()
                break
            except RuntimeError as exc:
                last_error = exc
                failed, server = server, None
                # another process may hold the port: that is the reason to retry, not a clean-up failure
                problems = failed.stop(check_port=False)
                if "already in use" not in failed.log_tail() or problems:
                    raise
        else:
            raise last_error
        yield server
    finally:
        if server is not None:
            problems = server.stop()
            if problems:
                raise RuntimeError("JupyterLab clean-up: " + "; ".join(problems))


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory):
    """A persistent Chromium context with a fresh profile (launched, never downloaded)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Playwright Python package is missing from the course environment; run `make setup`", pytrace=False
        )
    profile = tmp_path_factory.mktemp("chromium-profile")
    pw = sync_playwright().start()
    context = None
    try:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=False,
        )
        context.set_default_timeout(30_000)
        yield context
    finally:
        try:
            if context is not None:
                context.close()
        finally:
            pw.stop()
            # Chromium (and its helpers) carry the profile path on their command line.
            import psutil

            stray = []
            for p in psutil.process_iter(["cmdline"]):
                try:
                    if any(str(profile) in part for part in (p.info["cmdline"] or [])):
                        stray.append(p)
                except psutil.Error:
                    pass
            if stray and _kill_all(stray):
                raise RuntimeError(f"Chromium processes survive: {[p.pid for p in stray]}")
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def lab_page(browser, lab_server):
    """A fresh browser tab; afterwards the tab is closed and every kernel is shut down."""
    page = browser.new_page()
    tab = LabTab(page=page, server=lab_server)
    page.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.console_errors.append(f"uncaught: {e}"))
    try:
        yield tab
    finally:
        try:
            page.close()
        finally:
            lab_server.shut_down_kernels()
