"""Collect the verdicts the committed notebooks recorded into docs/what_reproduces.md.

Each notebook states the claims it tests with :func:`isodl.core.verdicts.verdict`,
which stores the fields in the cell's output. This tool reads them back from
the committed notebooks (so the page always describes the outputs a learner
sees) and writes one table per source::

    python -m tools.verdicts            # write docs/what_reproduces.md
    python -m tools.verdicts --check    # exit 1 if the page disagrees with the notebooks
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from isodl.core.verdicts import MIME, SOURCES, VERDICTS, Verdict

__all__ = ["ROOT", "PAGE", "collect", "render", "main"]

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "what_reproduces.md"

HEADER = """# What reproduces

Every claim the course tests, with the statistic on the real run, the same statistic on its null or control, the
seeds, and the verdict. This page is generated from the verdicts the committed notebooks record
(`python -m tools.verdicts`; a test checks that it agrees with them), so each line is what the notebook's own output
shows. Open the notebook to see the figure and the assert behind it.

What the verdicts mean:

{legend}
"""


def collect(notebooks: list[Path] | None = None) -> list[tuple[str, int, Verdict]]:
    """``(notebook name, code-cell index, verdict)`` for every verdict in the notebooks' outputs, in order."""
    if notebooks is None:
        notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    found = []
    for path in notebooks:
        cells = [c for c in json.loads(Path(path).read_text())["cells"] if c["cell_type"] == "code"]
        for index, cell in enumerate(cells):
            for out in cell.get("outputs", []):
                fields = out.get("data", {}).get(MIME)
                if fields is not None:
                    found.append((Path(path).name, index, Verdict(**fields)))
    return found


def render(rows: list[tuple[str, int, Verdict]]) -> str:
    """The Markdown page for ``rows`` (from :func:`collect`): one table per source, in notebook order."""
    legend = "\n".join(f"- **{name}**: {meaning}." for name, meaning in VERDICTS.items())
    parts = [HEADER.format(legend=legend)]
    sources: dict[str, list] = {}
    for name, index, v in rows:
        sources.setdefault(v.source, []).append((name, index, v))
    if not rows:
        parts.append("No notebook records a verdict yet.\n")
    order = {key: i for i, key in enumerate(SOURCES)}
    for source, items in sorted(sources.items(), key=lambda kv: order[kv[0]]):
        parts.append(f"## {SOURCES[source]}\n")
        parts.append("| notebook (code cell) | claim | statistic | null or control | seeds | verdict |")
        parts.append("|---|---|---|---|---|---|")
        for name, index, v in items:
            link = f"[{name[:2]}](../notebooks/{name}) ({index})"
            parts.append(f"| {link} | {v.claim} | {v.statistic} | {v.null} | {v.seeds} | **{v.verdict}** |")
        parts.append("")
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.verdicts", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page disagrees with the notebooks")
    args = parser.parse_args(argv)
    page = render(collect())
    if args.check:
        ok = PAGE.is_file() and PAGE.read_text() == page
        print("docs/what_reproduces.md agrees with the notebooks" if ok else "run python -m tools.verdicts")
        return 0 if ok else 1
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(page)
    print(f"{PAGE.relative_to(ROOT)}: {page.count('| **')} verdicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
