"""report.html: one self-contained page (inline CSS, no scripts, no network) that shows PNGs beside it.

Every picture is referenced by a relative path (its file name), so the folder can be moved or opened
straight from disk. All text is HTML-escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.training.checkpoint import atomic_write_bytes

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: right; }
th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
.models { display: flex; flex-wrap: wrap; gap: 1.5em; }
.note { color: #555; font-size: .9em; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


@dataclass
class Page:
    """An HTML page built piece by piece."""

    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2, anchor: str | None = None) -> None:
        ident = f' id="{esc(anchor)}"' if anchor else ""
        self.parts.append(f"<h{level}{ident}>{esc(text)}</h{level}>")

    def paragraph(self, text: str, cls: str | None = None) -> None:
        klass = f' class="{esc(cls)}"' if cls else ""
        self.parts.append(f"<p{klass}>{esc(text)}</p>")

    def figure(self, file_name: str, caption: str, alt: str | None = None) -> str:
        if "/" in file_name or "\\" in file_name:
            raise ValueError(f"pictures live beside report.html; got {file_name!r}")
        return (f'<figure><img src="{esc(file_name)}" alt="{esc(alt or caption)}" loading="eager">'
                f"<figcaption>{esc(caption)}</figcaption></figure>")

    def add_figure(self, file_name: str, caption: str, alt: str | None = None) -> None:
        self.parts.append(self.figure(file_name, caption, alt))

    def side_by_side(self, figures: list[str]) -> None:
        self.parts.append('<div class="models">' + "".join(f"<div>{f}</div>" for f in figures) + "</div>")

    def table(self, header: list[str], rows: list[list]) -> None:
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def render(self) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{esc(self.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                f"<h1>{esc(self.title)}</h1>\n" + "\n".join(self.parts) + "\n</body>\n</html>\n")

    def write(self, path: Path) -> Path:
        """Write the page atomically (a temporary file of its own, renamed into place)."""
        atomic_write_bytes(Path(path), self.render().encode("utf-8"))
        return Path(path)
