"""The comparison page: the 2-D map of both sets (an SVG; a point shows its image on hover and opens it on
click), the distances, and the features they were measured on. One HTML file with its thumbnails; no
network, one small inline script."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

MARKERS = (("#4477aa", "circle"), ("#ee6677", "square"))
STYLE = ("body{font-family:sans-serif;margin:2em;background:#fafafa;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}th{background:#eee}"
         "#layout{display:flex;gap:1.5em;align-items:flex-start}#map{background:#fff;border:1px solid #ccc}"
         "#hover{width:260px;min-height:200px;border:1px solid #ccc;background:#fff;padding:.5em}"
         "#hover img{max-width:100%}.pt{cursor:pointer}.pt:hover{stroke:#000;stroke-width:2}p.note{color:#555}")
SCRIPT = """
const panel = document.getElementById('hover');
for (const point of document.querySelectorAll('#map .pt')) {
  point.addEventListener('mouseenter', () => {
    panel.querySelector('img').src = point.dataset.thumb;
    panel.querySelector('img').alt = point.dataset.label;
    panel.querySelector('figcaption').textContent = point.dataset.label;
  });
}
"""


def write_page(out: Path, *, names: tuple[str, str], points: np.ndarray, groups: np.ndarray, labels: list[str],
               thumbs: list[str], previews: list[str], rows: list[tuple[str, str]], features: str,
               projection: str) -> Path:
    """``points`` (n, 2) in map space, ``groups`` 0/1 per point; ``rows`` (name, value) of the distance table."""
    width, height, pad = 720, 560, 24
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = pad + (points - lo) / span * np.array([width - 2 * pad, height - 2 * pad])
    marks = []
    for (x, y), group, label, thumb, preview in zip(xy, groups, labels, thumbs, previews):
        colour, shape = MARKERS[int(group)]
        attrs = (f'class="pt" data-set="{int(group)}" data-thumb="{html.escape(thumb)}" '
                 f'data-label="{html.escape(label)}" fill="{colour}" fill-opacity="0.8"')
        glyph = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" {attrs}>' if shape == "circle" else
                 f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" {attrs}>')
        closing = "</circle>" if shape == "circle" else "</rect>"
        marks.append(f'<a href="{html.escape(preview)}" target="_blank">{glyph}<title>{html.escape(label)}</title>'
                     f'{closing}</a>')
    legend = "".join(f'<span style="color:{colour}">{"●" if shape == "circle" else "■"}</span> '
                     f"{html.escape(name)} &nbsp; " for (colour, shape), name in zip(MARKERS, names))
    svg = (f'<svg id="map" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg">{"".join(marks)}</svg>')
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>synthfarm compare: "
            f"{html.escape(names[0])} vs {html.escape(names[1])}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(names[0])} vs {html.escape(names[1])}</h1>"
            f"<section id='features'><h2>Features</h2><p>{html.escape(features)}</p></section>"
            f"<section id='distances'><h2>Distances</h2><table>{table}</table><p class='note'>Both are 0 for sets "
            "drawn from one distribution; the Fréchet distance also grows as sets get smaller, so the last two rows "
            "measure at one size: two random halves of the first set (how far a set is from itself), and a half "
            "of the first set against the second. Compare numbers only on the same features.</p></section>"
            f"<section id='map-section'><h2>Map ({html.escape(projection)})</h2><p>{legend}</p>"
            f"<p class='note'>Hover over a point to see its image; click to open it.</p><div id='layout'>{svg}"
            "<figure id='hover'><img src='' alt=''><figcaption>hover over a point</figcaption></figure></div>"
            f"</section><script>{SCRIPT}</script></body></html>")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
