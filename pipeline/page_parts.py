"""The pieces of the static HTML pages (a run's report, a comparison): one style, tables that sort
by a click on their header, numbers rounded for reading, media linked by relative paths so a page
opens from the folder it was written to (or a copy of the run folder around it)."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1b1b1b;max-width:1600px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} .muted{color:#666}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:22px} .card span{color:#666;font-size:12px}
table{border-collapse:collapse;margin:6px 0} th,td{border-bottom:1px solid #e4e4e4;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f6f6f6;position:sticky;top:0}
table.sortable th{cursor:pointer} table.sortable th:after{content:" \\2195";color:#aaa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
video,img.thumb{width:160px;display:block;border-radius:4px;background:#000}
figure{display:inline-block;margin:0 6px 6px 0} figcaption{font-size:12px;color:#444}
figure.chosen video{outline:3px solid #d62728} img.plot{max-width:100%;margin:4px 12px 12px 0}
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    var rows = Array.from(body.rows);
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def number(value: Any, digits: int = 2) -> str:
    """A number as a reader wants it: fixed decimals, thousands grouped, NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def relative(path: str | os.PathLike, page_dir: str | os.PathLike) -> str:
    """``path`` as the page links it (through the run's stage links, never resolved)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(page_dir))


def video(src: str, caption: str = "", chosen: bool = False) -> str:
    cls = ' class="chosen"' if chosen else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure{cls}><video src="{esc(src)}" controls muted loop playsinline preload="metadata"></video>{cap}</figure>'


def thumb(src: str) -> str:
    return f'<img class="thumb" src="{esc(src)}" alt="condition">'


def plot(src: str, title: str) -> str:
    return f'<img class="plot" src="{esc(src)}" alt="{esc(title)}" title="{esc(title)}">'


def cards(pairs: Iterable[tuple[str, str]]) -> str:
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{v}</b><span>{esc(k)}</span></div>' for k, v in pairs)
        + "</div>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[tuple[str, Any]]], sortable: bool = True) -> str:
    """``rows``: per row, per column ``(cell html, sort key)``; numbers right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for content, key in row:
            cls = ' class="num"' if isinstance(key, (int, float)) and not isinstance(key, bool) else ""
            cells.append(f'<td{cls} data-sort="{esc(key)}">{content}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{esc(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style>"
        f"<body>{body}<script>{SORT_SCRIPT}</script></body></html>"
    )


def numeric_cell(value: Any, digits: int = 2) -> tuple[str, Any]:
    key = value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else ""
    return number(value, digits), key


def text_cell(value: Any) -> tuple[str, Any]:
    return esc(value), str(value)
