"""Every course notebook in a real JupyterLab, as a learner would use it.

For each notebooks/NN_*.ipynb: open it, clear its outputs, Run > Run All Cells, wait until the
kernel is idle, save (the server works on a temporary copy), then check that

* every code cell ran and none raised (read back from the saved file, and in the page: tracebacks);
* no widget failed to render ("Error displaying widget", "model not found", "Loading widget..." left);
* every cell that stores a figure in the committed notebook shows a rendered image;
* every interactive figure responds: moving its first slider (arrow keys on the handle) and picking
  another option in its first dropdown each change the figure drawn below the controls.

Each interactive figure is then photographed into build/screenshots/<notebook>_<n>.png for review;
a failure leaves build/screenshots/<notebook>_failure.png behind.

Timeouts. Nothing here bounds how long the kernel may compute: every wait on the kernel (its start
when a notebook opens, Run All Cells, a figure's redraw after a control moved) is bounded only by
the hang guard ISODL_BROWSER_TIMEOUT (default 600 s, see conftest.py), like nbval's and papermill's
per-cell timeout; run-time budgets are measured and reported by `make course`, never enforced here.
The short timeouts below bound only the browser's and the server's own work: loading the page,
saving, rendering outputs, showing a redrawn figure once the kernel is idle again.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
OPEN_TIMEOUT = 90  # load JupyterLab and show the notebook's cells (its kernel then has up to the hang guard)
SAVE_TIMEOUT = 30
RENDER_TIMEOUT = 20  # widgets and images to render once the kernel is idle
FIGURE_TIMEOUT = 30  # a redrawn figure to show once the kernel is idle (a busy kernel: up to the hang guard)
SLIDER_PRESSES = 3
WIDGET_FAILURES = (
    "Error displaying widget",
    "model not found",
    "Failed to load model class",
    "Could not create a view",
    "Loading widget...",
)

# How many entries the Log Console holds: kernel output that belongs to no cell, such as the
# traceback of an exception raised in a widget callback (JupyterLab shows it nowhere else).
JS_LOG_ENTRIES = """(() => {
    const item = document.querySelector('.jp-LogConsoleStatusItem:not(.lm-mod-hidden) [title]');
    const m = item ? /(\\d+) log entr/.exec(item.title) : null;
    return m ? Number(m[1]) : 0;
  })()"""

# The state of the open notebook, read from the page in one go.
JS_STATE = (
    """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const dialog = document.querySelector('.jp-Dialog');
  if (!panel) return {panel: false, dialog: dialog ? dialog.innerText : null};
  const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const kn = panel.querySelector('.jp-KernelName .jp-ToolbarButtonComponent-label');
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  return {
    panel: true,
    dialog: dialog ? dialog.innerText : null,
    status: ind ? ind.dataset.status : null,
    kernel: kn ? kn.textContent.trim() : null,
    dirty: !!document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty'),
    log_entries: """
    + JS_LOG_ENTRIES
    + """,
    prompts: cells.map(c => c.classList.contains('jp-CodeCell')
      ? (c.querySelector('.jp-InputArea-prompt')?.textContent || '').trim() : null),
  };
}"""
)

# Per cell: tracebacks on stderr, widget failure texts, loaded images.
JS_OUTPUTS = """(failures) => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
  return cells.map((c, i) => {
    const outs = [...c.querySelectorAll('.jp-OutputArea-output')];
    const text = outs.map(o => o.textContent || '').join('\\n');
    // ipywidgets draws a broken-page icon (.jupyter-widgets-error-widget) for a widget it cannot show
    const broken = [...c.querySelectorAll('.jupyter-widgets-error-widget')]
      .map(e => 'error widget: ' + (e.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 300));
    const stderr = outs.filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr')
                       .map(o => o.innerText || '');
    return {
      index: i,
      traceback: stderr.find(t => t.includes('Traceback')) || null,
      widget_failures: failures.filter(f => text.includes(f)).concat(broken),
      images: [...c.querySelectorAll('.jp-OutputArea-output img')].filter(im => im.complete && im.naturalWidth > 0).length,
      widgets: c.querySelectorAll('.jp-OutputArea-output .jupyter-widgets:not(.jupyter-widgets-error-widget)').length,
    };
  });
}"""

# Mark every interactive figure (a VBox: controls, then an ipywidgets Output) with data-isodl-figure.
JS_FIND_FIGURES = """() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
  const found = [];
  for (const box of document.querySelectorAll('.jp-OutputArea-output .widget-vbox')) {
    const kids = [...box.children];
    const out = kids.findIndex(k => k.classList.contains('widget-output'));
    if (out < 1) continue;
    const controls = kids.slice(0, out);
    const sliders = controls.flatMap(k => [...k.querySelectorAll('.widget-slider .noUi-handle')]);
    const dropdowns = controls.flatMap(k => [...k.querySelectorAll('.widget-dropdown select')]);
    if (!sliders.length && !dropdowns.length) continue;
    const n = found.length;
    box.dataset.isodlFigure = String(n);
    if (sliders.length) sliders[0].dataset.isodlSlider = String(n);
    if (dropdowns.length) dropdowns[0].dataset.isodlDropdown = String(n);
    box.querySelector(':scope > .widget-output').dataset.isodlOutput = String(n);
    found.push({n, cell: cells.findIndex(c => c.contains(box)), slider: sliders.length > 0, dropdown: dropdowns.length > 0});
  }
  return found;
}"""

# The figure an interactive figure's Output shows right now.
JS_FIGURE = (
    """(n) => {
  const out = document.querySelector(`[data-isodl-output="${n}"]`);
  const ind = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
  if (!out) return null;
  const img = out.querySelector('img');
  const stderr = [...out.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr').map(o => o.innerText);
  return {
    src: img && img.complete && img.naturalWidth > 0 ? img.getAttribute('src') : null,
    status: ind ? ind.dataset.status : null,
    error: stderr.length ? stderr.join('\\n') : null,
    log_entries: """
    + JS_LOG_ENTRIES
    + """,
  };
}"""
)


class StoredNotebook:
    """What the committed notebook file says: cell sources and which cells hold figures."""

    def __init__(self, path: Path):
        self.path = path
        self.nb = json.loads(path.read_text(encoding="utf-8"))
        self.cells = self.nb["cells"]
        self.figure_cells = [
            i
            for i, c in enumerate(self.cells)
            if c["cell_type"] == "code" and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
        ]
        self.widget_cells = [
            i
            for i, c in enumerate(self.cells)
            if c["cell_type"] == "code"
            and any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.get("outputs", []))
        ]

    def describe(self, i: int) -> str:
        src = self.cells[i]["source"]
        src = "".join(src) if isinstance(src, list) else src
        first = next((line.strip() for line in src.splitlines() if line.strip()), "")
        if len(first) > 70:
            first = first[:67] + "..."
        return f"cell {i + 1}/{len(self.cells)} `{first}`"


class NotebookRun:
    """One notebook open in one tab, with failures that name the notebook and the cell."""

    def __init__(self, tab, notebook: Path, guard: float):
        self.tab = tab
        # The hang guard (ISODL_BROWSER_TIMEOUT): the longest any wait on the kernel may take.
        self.guard = max(float(guard), OPEN_TIMEOUT)
        self.page = tab.page
        self.server = tab.server
        self.name = notebook.name
        self.stem = notebook.stem
        self.copy = self.server.root_dir / notebook.name
        # The server's copy, taken when the session started: what actually runs, even if someone
        # edits notebooks/ meanwhile. Read before anything runs or saves it.
        self.stored = StoredNotebook(self.copy)
        self.log_offset = self.server.log_path.stat().st_size if self.server.log_path.exists() else 0
        self.log_entries_seen = 0

    # -- helpers ---------------------------------------------------------------------------
    def fail(self, message: str, cell: int | None = None):
        if cell is not None:
            try:
                self.page.locator(".jp-Notebook .jp-Cell").nth(cell).scroll_into_view_if_needed(timeout=5000)
            except Exception:
                pass
        shot = SCREENSHOTS / f"{self.stem}_failure.png"
        try:
            self.page.screenshot(path=str(shot))
            message += f"\n(screenshot of the page: {shot.relative_to(ROOT)})"
        except Exception:
            pass
        log = self.new_log_tracebacks()
        if log:
            message += f"\nthe JupyterLab server log shows:\n{log}"
        message += f"\n(JupyterLab server log: {self.server.log_path})"
        if self.tab.console_errors:
            message += "\nbrowser console errors:\n  " + "\n  ".join(e[:300] for e in self.tab.console_errors[-10:])
        pytest.fail(f"{self.name}: {message}", pytrace=False)

    def new_log_tracebacks(self, max_lines: int = 40) -> str:
        """What the server log (kernels write their stderr there too) says since this notebook opened."""
        try:
            with open(self.server.log_path, "rb") as f:
                f.seek(self.log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        start = text.find("Traceback")
        if start < 0:
            return ""
        lines = text[text.rfind("\n", 0, start) + 1 :].splitlines()
        return "\n".join(lines[:max_lines])

    def check_log_console(self, entries: int, where: str, cell: int | None = None) -> None:
        """New Log Console entries: fail on a traceback (e.g. a widget callback that raised)."""
        if entries <= self.log_entries_seen:
            return
        self.log_entries_seen = entries
        panel = self.page.locator(".jp-LogConsolePanel").first
        if not panel.is_visible():
            self.page.locator(".jp-LogConsoleStatusItem").first.click()  # opens the Log Console
        panel.wait_for(state="visible", timeout=10_000)
        time.sleep(0.5)
        text = panel.inner_text()
        if "Traceback" in text or "Error" in text:
            tail = "\n".join(text.strip().splitlines()[-30:])
            self.fail(
                f"{where}: the kernel reported an error outside any cell output "
                f"(JupyterLab's Log Console; e.g. an exception in a widget callback):\n...\n{tail}",
                cell=cell,
            )
        print(f"{self.name}: Log Console entries {where}:\n{text.strip()[-2000:]}")

    def state(self) -> dict:
        return self.page.evaluate(JS_STATE)

    def check_no_dialog(self, st: dict) -> None:
        if st.get("dialog"):
            self.fail(f"JupyterLab shows a dialog: {st['dialog'].strip()[:500]!r}")

    def menu(self, top: str, command: str) -> None:
        """Click a menu bar entry, then the item bound to ``command`` (e.g. Run > Run All Cells)."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^\s*{re.escape(top)}\s*$")).first.click()
        self.page.locator(f'.lm-Menu .lm-Menu-item[data-command="{command}"]').first.click()

    # -- steps -----------------------------------------------------------------------------
    def open(self) -> None:
        """Open the notebook: its cells must show within OPEN_TIMEOUT, its kernel be idle within the hang guard."""
        self.page.goto(self.server.url(self.name), wait_until="domcontentloaded", timeout=OPEN_TIMEOUT * 1000)
        start = time.monotonic()
        st = {}
        while True:
            st = self.state()
            self.check_no_dialog(st)
            shown = bool(st.get("panel")) and len(st["prompts"]) == len(self.stored.cells)
            if shown and st.get("kernel") not in (None, "", "No Kernel", "Kernel") and st.get("status") == "idle":
                return
            waited = time.monotonic() - start
            if (not shown and waited > OPEN_TIMEOUT) or waited > self.guard:
                what = "show its cells" if not shown else "get an idle kernel"
                limit = OPEN_TIMEOUT if not shown else self.guard
                self.fail(
                    f"the notebook did not {what} within {limit:.0f} s "
                    f"(kernel: {st.get('kernel')!r}, status: {st.get('status')!r}, "
                    f"{len(st.get('prompts') or [])} of {len(self.stored.cells)} cells shown)\n"
                    f"JupyterLab log:\n{self.server.log_tail()}"
                )
            time.sleep(0.25)

    def run_all(self, timeout: float) -> None:
        # Clear the stored outputs first, so that every prompt and output seen later is fresh.
        self.menu("Edit", "editmenu:clear-all")
        self.wait_for(
            lambda st: not any(p and p[1:-2].strip().isdigit() for p in st["prompts"]),
            10,
            "Edit > Clear Outputs of All Cells did not clear the execution counts",
        )
        self.menu("Run", "runmenu:run-all")
        start = time.monotonic()
        quiet_since = None
        st = self.state()
        while True:
            st = self.state()
            self.check_no_dialog(st)
            if st["status"] in ("dead", "unknown"):
                self.fail(
                    f"the kernel died during Run All Cells{self.first_unfinished(st)}\n"
                    f"JupyterLab log:\n{self.server.log_tail()}",
                    cell=self.first_unfinished_index(st),
                )
            code = [p for p in st["prompts"] if p is not None]
            running = any(p == "[*]:" for p in code)
            if st["status"] == "idle" and not running:
                if all(p[1:-2].strip().isdigit() for p in code):
                    return
                # Stopped early (JupyterLab stops at the first error): done once it stays quiet.
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2:
                    return
            else:
                quiet_since = None
            if time.monotonic() - start > timeout:
                self.fail(
                    f"Run All Cells did not finish within {timeout:.0f} s{self.first_unfinished(st)}",
                    cell=self.first_unfinished_index(st),
                )
            time.sleep(0.25)

    def first_unfinished_index(self, st: dict) -> int | None:
        prompts = st.get("prompts") or []
        running = [i for i, p in enumerate(prompts) if p == "[*]:"]
        not_run = [i for i, p in enumerate(prompts) if p is not None and not p[1:-2].strip().isdigit()]
        return (running or not_run or [None])[0]

    def first_unfinished(self, st: dict) -> str:
        i = self.first_unfinished_index(st)
        if i is None:
            return ""
        p = st["prompts"][i]
        what = "still running" if p == "[*]:" else "not run"
        return f"; first cell {what}: {self.stored.describe(i)}"

    def wait_for(self, cond, timeout: float, message: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()
            self.check_no_dialog(st)
            if cond(st):
                return st
            if time.monotonic() > deadline:
                self.fail(message)
            time.sleep(0.2)

    def save(self) -> dict:
        """File > Save Notebook, then read the saved copy back."""
        before = self.copy.stat().st_mtime_ns
        self.menu("File", "docmanager:save")
        deadline = time.monotonic() + SAVE_TIMEOUT
        while time.monotonic() < deadline:
            st = self.state()
            self.check_no_dialog(st)
            if self.copy.stat().st_mtime_ns != before and not st["dirty"]:
                try:
                    return json.loads(self.copy.read_text(encoding="utf-8"))
                except json.JSONDecodeError:
                    pass  # caught mid-write
            time.sleep(0.2)
        self.fail(f"File > Save Notebook did not write {self.copy.name} within {SAVE_TIMEOUT} s")

    def check_saved(self, saved: dict) -> None:
        cells = saved["cells"]
        if len(cells) != len(self.stored.cells):
            self.fail(f"the saved notebook has {len(cells)} cells, the committed one {len(self.stored.cells)}")
        for i, c in enumerate(cells):
            if c["cell_type"] != "code":
                continue
            for o in c.get("outputs", []):
                if o.get("output_type") == "error":
                    self.fail(f"{self.stored.describe(i)} raised {o.get('ename')}: {o.get('evalue')}", cell=i)
                if (
                    o.get("output_type") == "stream"
                    and o.get("name") == "stderr"
                    and "Traceback" in "".join(o.get("text", ""))
                ):
                    text = "".join(o["text"]).strip()
                    self.fail(f"{self.stored.describe(i)} printed a traceback:\n{text[-1500:]}", cell=i)
        not_run = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and c.get("execution_count") is None]
        if not_run:
            self.fail(
                f"{len(not_run)} code cell(s) did not run; the first: {self.stored.describe(not_run[0])}",
                cell=not_run[0],
            )

    def check_outputs(self) -> None:
        """Tracebacks, widget failures and figures, as rendered in the page."""
        deadline = time.monotonic() + RENDER_TIMEOUT
        while True:
            cells = self.page.evaluate(JS_OUTPUTS, list(WIDGET_FAILURES))
            for c in cells:
                if c["traceback"]:
                    self.fail(
                        f"{self.stored.describe(c['index'])} shows a traceback:\n{c['traceback'][-1500:]}",
                        cell=c["index"],
                    )
            self.check_log_console(self.state()["log_entries"], "after Run All Cells")
            for c in cells:
                broken = [f for f in c["widget_failures"] if f != "Loading widget..."]
                if broken:
                    self.fail(
                        f"{self.stored.describe(c['index'])}: a widget failed to render: "
                        f"{'; '.join(repr(f) for f in broken)}",
                        cell=c["index"],
                    )
            pending = [c for c in cells if c["widget_failures"]]
            pending += [cells[i] for i in self.stored.figure_cells if i < len(cells) and not cells[i]["images"]]
            pending += [cells[i] for i in self.stored.widget_cells if i < len(cells) and not cells[i]["widgets"]]
            if not pending:
                return
            if time.monotonic() > deadline:
                c = pending[0]
                if c["widget_failures"]:
                    self.fail(
                        f"{self.stored.describe(c['index'])}: a widget did not render "
                        f"('Loading widget...' still shown {RENDER_TIMEOUT} s after the kernel went idle)",
                        cell=c["index"],
                    )
                if c["index"] in self.stored.widget_cells and not c["widgets"]:
                    self.fail(
                        f"{self.stored.describe(c['index'])} stores a widget in the committed notebook, but "
                        f"JupyterLab shows none there (is the jupyterlab_widgets extension installed?)",
                        cell=c["index"],
                    )
                self.fail(
                    f"{self.stored.describe(c['index'])} stores a figure (image/png) in the committed "
                    f"notebook, but shows no rendered image in JupyterLab",
                    cell=c["index"],
                )
            time.sleep(0.25)

    def figure(self, n: int) -> dict:
        return self.page.evaluate(JS_FIGURE, n)

    def wait_for_figure(self, n: int, cell: int, before: str | None, what: str) -> str:
        """Wait until figure ``n`` shows a loaded image (other than ``before``) that stays put, kernel idle.

        FIGURE_TIMEOUT counts from the moment the kernel was last seen idle, so a redraw the kernel is
        still computing (slow on a slow machine) is bounded only by the hang guard.
        """
        start = time.monotonic()
        idle_since = start
        last, stable = None, 0
        while True:
            f = self.figure(n)
            if f is None:
                self.fail(f"{self.stored.describe(cell)}: the interactive figure disappeared {what}", cell=cell)
            if f["error"]:
                self.fail(
                    f"{self.stored.describe(cell)}: the interactive figure shows an error {what}:\n"
                    f"{f['error'][-1500:]}",
                    cell=cell,
                )
            self.check_log_console(f["log_entries"], f"{self.stored.describe(cell)}, {what}", cell=cell)
            ok = f["src"] is not None and f["src"] != before and f["status"] == "idle"
            stable = stable + 1 if ok and f["src"] == last else 0
            last = f["src"]
            if stable >= 3:  # unchanged for 3 polls with an idle kernel: every queued redraw is done
                return f["src"]
            now = time.monotonic()
            if f["status"] != "idle":
                idle_since = None
            elif idle_since is None:
                idle_since = now
            if (idle_since is not None and now - idle_since > FIGURE_TIMEOUT) or now - start > self.guard:
                waited = (
                    f"{now - start:.0f} s, the hang guard, with the kernel {f['status']}"
                    if now - start > self.guard
                    else f"{FIGURE_TIMEOUT} s with an idle kernel, {now - start:.0f} s in all"
                )
                if before is not None and f["src"] == before:
                    self.fail(
                        f"{self.stored.describe(cell)}: the figure did not change {what} (waited {waited})", cell=cell
                    )
                self.fail(
                    f"{self.stored.describe(cell)}: no settled figure {what} (waited {waited}; "
                    f"image loaded: {f['src'] is not None}, kernel: {f['status']})",
                    cell=cell,
                )
            time.sleep(0.2)

    def exercise_figures(self) -> list[Path]:
        figures = self.page.evaluate(JS_FIND_FIGURES)
        shots = []
        for fig in figures:
            n, cell = fig["n"], fig["cell"]
            box = self.page.locator(f'[data-isodl-figure="{n}"]')
            box.scroll_into_view_if_needed()
            src = self.wait_for_figure(n, cell, None, "after Run All Cells")
            if fig["slider"]:
                handle = self.page.locator(f'[data-isodl-slider="{n}"]')
                value = handle.get_attribute("aria-valuenow")
                top = handle.get_attribute("aria-valuemax")
                key = (
                    "ArrowLeft"
                    if value is not None and top is not None and float(value) >= float(top)
                    else "ArrowRight"
                )
                handle.focus()
                for _ in range(SLIDER_PRESSES):
                    handle.press(key)
                deadline = time.monotonic() + 5
                while handle.get_attribute("aria-valuenow") == value:
                    if time.monotonic() > deadline:
                        self.fail(
                            f"{self.stored.describe(cell)}: the slider did not move on {key} (value stays {value})",
                            cell=cell,
                        )
                    time.sleep(0.1)
                label = f"after moving the slider from {value} to {handle.get_attribute('aria-valuenow')}"
                src = self.wait_for_figure(n, cell, src, label)
            if fig["dropdown"]:
                select = self.page.locator(f'[data-isodl-dropdown="{n}"]')
                options = select.locator("option").all_inner_texts()
                current = select.evaluate("s => s.selectedIndex")
                if len(options) < 2:
                    self.fail(f"{self.stored.describe(cell)}: a dropdown with fewer than two options", cell=cell)
                target = 1 if current == 0 else 0
                select.select_option(index=target)
                src = self.wait_for_figure(n, cell, src, f"after choosing {options[target]!r} in the dropdown")
            shot = SCREENSHOTS / f"{self.stem}_{n + 1}.png"
            self.page.locator(".jp-Notebook .jp-Cell").nth(cell).screenshot(path=str(shot))
            shots.append(shot)
        return shots


def test_there_are_notebooks(course_notebooks):
    assert course_notebooks, "no notebooks/NN_*.ipynb to test"


def test_notebook_in_jupyterlab(notebook: Path, lab_page, run_timeout, browser_timings):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob(f"{notebook.stem}_*.png"):
        old.unlink()
    run = NotebookRun(lab_page, notebook, guard=run_timeout)
    t0 = time.monotonic()
    run.open()
    t_open = time.monotonic()
    run.run_all(run_timeout)
    t_run = time.monotonic()
    run.check_saved(run.save())
    run.check_outputs()
    shots = run.exercise_figures()
    t_end = time.monotonic()
    browser_timings.append(
        f"{notebook.name}: open {t_open - t0:.0f} s, Run All Cells {t_run - t_open:.0f} s, "
        f"checks + {len(shots)} interactive figure(s) {t_end - t_run:.0f} s"
    )
    print(
        f"{notebook.name}: opened in {t_open - t0:.1f} s, ran in {t_run - t_open:.1f} s, "
        f"checks and {len(shots)} interactive figure(s) in {t_end - t_run:.1f} s; "
        f"screenshots: {[str(s.relative_to(ROOT)) for s in shots]}"
    )
