"""A self-contained HTML report: one file, figures embedded as data URIs, user strings escaped.

Figures are embedded at most ``MAX_FIGURE_PX`` pixels wide or high, as 256-colour PNG when that is
smaller (plots have few colours), so a report stays small; the full-resolution PNG and SVG files
stay beside the tables.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from phenolapse.io_utils import atomic_write

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:1.2em 2em}
header h1{margin:0;font-size:1.6em} header p{margin:.3em 0 0;opacity:.85}
nav{padding:.6em 2em;background:#e8eef3;position:sticky;top:0;font-size:.9em}
nav a{margin-right:1.2em;color:#1f3b57;text-decoration:none}
main{padding:0 2em 3em;max-width:1300px}
section{background:#fff;margin:1.5em 0;padding:1em 1.5em;border-radius:6px;box-shadow:0 1px 3px #0002}
h2{color:#1f3b57;border-bottom:1px solid #ddd;padding-bottom:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f0f3f6} td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.6em 1em .6em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;max-width:600px}
.note{color:#555;font-size:.9em} .missing{color:#a33}
ul.links{columns:3 16em;font-size:.9em}
"""

MAX_FIGURE_PX = 1100


@dataclass
class Figure:
    """An image file to embed, with a caption."""

    path: Path
    caption: str = ""
    width: int | None = None


@dataclass
class Table:
    """A table to render (at most ``max_rows`` rows shown)."""

    data: pd.DataFrame
    caption: str = ""
    max_rows: int = 60
    float_format: str = "{:.3g}"


@dataclass
class Links:
    """A list of links to pages beside the report: ``(relative href, text)`` pairs."""

    items: list[tuple[str, str]]
    caption: str = ""


@dataclass
class Text:
    """A paragraph of plain text (escaped)."""

    text: str
    css_class: str = ""


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    blocks: Sequence[Figure | Table | Text | Links] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """HTML id of the section."""
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


def _figure_html(fig: Figure) -> str:
    path = Path(fig.path)
    if not path.is_file():
        return f'<p class="missing">figure missing: {html.escape(str(path))}</p>'
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    raw = path.read_bytes()
    if mime == "image/png":
        raw = compact_png(raw)
    data = base64.b64encode(raw).decode("ascii")
    width = f' style="width:{int(fig.width)}px"' if fig.width else ""
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{html.escape(fig.caption or path.name)}"{width}>'
        f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
    )


def compact_png(raw: bytes, *, max_px: int = MAX_FIGURE_PX) -> bytes:
    """``raw`` PNG scaled to at most ``max_px`` on its longer side, as 256 colours when smaller.

    Transparent pixels are put on white. Returns ``raw`` unchanged when it cannot be decoded or
    the result would not be smaller.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            rgba = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return raw
    img = Image.new("RGB", rgba.size, "white")
    img.paste(rgba, mask=rgba.getchannel("A"))
    scale = min(1.0, max_px / max(img.size))
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    small = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=True)
    out = buf.getvalue()
    return out if len(out) < len(raw) else raw


def _links_html(links: Links) -> str:
    cap = f"<p>{html.escape(links.caption)}</p>" if links.caption else ""
    items = "".join(
        f'<li><a href="{html.escape(href, quote=True)}">{html.escape(text)}</a></li>'
        for href, text in links.items
    )
    return f'{cap}<ul class="links">{items}</ul>'


def _table_html(tab: Table) -> str:
    df = tab.data
    shown = df.head(tab.max_rows)

    def cell(v: object) -> str:
        if isinstance(v, float):
            return html.escape(tab.float_format.format(v)) if pd.notna(v) else ""
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = (
        f'<p class="note">{len(df) - len(shown)} more rows in the table file.</p>'
        if len(df) > len(shown)
        else ""
    )
    cap = f"<caption>{html.escape(tab.caption)}</caption>" if tab.caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def render_html(
    sections: list[Section],
    *,
    title: str,
    subtitle: str = "",
    back: tuple[str, str] | None = None,
) -> str:
    """The report as one HTML string; ``back`` is an ``(href, text)`` link put first in the menu."""
    parts = []
    for sec in sections:
        blocks = []
        for b in sec.blocks:
            if isinstance(b, Figure):
                blocks.append(_figure_html(b))
            elif isinstance(b, Table):
                blocks.append(_table_html(b))
            elif isinstance(b, Links):
                blocks.append(_links_html(b))
            else:
                cls = f' class="{html.escape(b.css_class)}"' if b.css_class else ""
                blocks.append(f"<p{cls}>{html.escape(b.text)}</p>")
        parts.append(
            f'<section id="{sec.anchor}"><h2>{html.escape(sec.title)}</h2>{"".join(blocks)}</section>'
        )
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    if back is not None:
        nav = f'<a href="{html.escape(back[0], quote=True)}">{html.escape(back[1])}</a>' + nav
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)} &middot; generated {stamp}</p></header>"
        f"<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>"
    )


def write_html(
    sections: list[Section],
    path: Path,
    *,
    title: str,
    subtitle: str = "",
    back: tuple[str, str] | None = None,
) -> Path:
    """Write the report atomically to ``path``."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(render_html(sections, title=title, subtitle=subtitle, back=back))
    return Path(path)
