"""SVG plots of the comparison (run.py): grouped bars, lines against
threads, and pictures laid side by side. Plain SVG 1.1 text, no library;
rsvg-convert turns each into a PNG."""
import html
import math
import re

# One colour per allocator, pinheap's first (Tableau 10).
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#222222", "#8c564b"]


def _text(x, y, s, size=12, anchor="start", rotate=None, weight="normal"):
    tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{size}" '
            f'text-anchor="{anchor}" font-weight="{weight}"{tr}>{html.escape(str(s))}</text>')


def _doc(w, h, body):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{w}" height="{h}" viewBox="0 0 {w} {h}">\n<rect width="{w}" height="{h}" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def _legend(names, colours, x, y, width):
    per_row = max(1, int((width - x) // 190))
    out = []
    for i, n in enumerate(names):
        cx, cy = x + (i % per_row) * 190, y + (i // per_row) * 18
        out.append(f'<rect x="{cx}" y="{cy - 10}" width="12" height="12" fill="{colours[i]}"/>')
        out.append(_text(cx + 16, cy, n, 12))
    return out


def bars(title, groups, series, values, ylabel, note="", cap=None):
    """Grouped bars: values[(group, series)] -> number or None (drawn as
    'n/a', or '>cap' when it is above cap)."""
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    top = max([v for v in values.values() if v is not None] + [1.0])
    if cap:
        top = min(top, cap)
    shown_max = top
    top = math.ceil(top * 1.05 * 2) / 2
    gw = max(60, 14 * len(series) + 16)
    left, plot_h, plot_top = 70, 360, 60
    # Wide enough for the bars and for the title (16 px bold: about 10 px a letter).
    w = max(left + gw * len(groups) + 40, 10 * len(title) + 40)
    legend_rows = (len(series) + max(1, (w - left) // 190) - 1) // max(1, (w - left) // 190)
    h = plot_top + plot_h + 130 + 18 * legend_rows
    body = [_text(w / 2, 24, title, 16, "middle", weight="bold"), _text(w / 2, 42, note, 11, "middle")]
    y0 = plot_top + plot_h
    for k in range(0, int(top * 2) + 1):
        v = k / 2
        y = y0 - v / top * plot_h
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 30}" y2="{y:.1f}" stroke="#dddddd"/>')
        body.append(_text(left - 6, y + 4, f"{v:g}", 11, "end"))
    body.append(_text(18, plot_top + plot_h / 2, ylabel, 12, "middle", rotate=-90))
    for gi, g in enumerate(groups):
        gx = left + gi * gw + 8
        for si, s in enumerate(series):
            v = values.get((g, s))
            x = gx + si * 14
            if v is None:
                continue
            shown = min(v, shown_max)
            y = y0 - shown / top * plot_h
            body.append(f'<rect x="{x}" y="{y:.1f}" width="12" height="{y0 - y:.1f}" fill="{colours[si]}"/>')
            if cap and v > cap:
                body.append(_text(x + 6, y - 3, f">{cap:g}", 9, "middle"))
        body.append(_text(gx + 7 * len(series), y0 + 14, g, 11, "end", rotate=-35))
    body.append(f'<line x1="{left}" y1="{y0}" x2="{w - 30}" y2="{y0}" stroke="black"/>')
    body += _legend(series, colours, left, y0 + 95, w)
    return _doc(w, h, body)


def lines(title, panels, series, note=""):
    """Small multiples: panels is a list of (name, {series: [(x, y), ...]}),
    y on a log scale."""
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    pw, ph, cols = 330, 240, 3
    rows = (len(panels) + cols - 1) // cols
    w = 40 + cols * (pw + 40)
    legend_rows = (len(series) + max(1, (w - 60) // 190) - 1) // max(1, (w - 60) // 190)
    h = 70 + rows * (ph + 70) + 20 + 18 * legend_rows
    body = [_text(w / 2, 24, title, 16, "middle", weight="bold"), _text(w / 2, 42, note, 11, "middle")]
    for pi, (name, data) in enumerate(panels):
        ox, oy = 60 + (pi % cols) * (pw + 40), 70 + (pi // cols) * (ph + 70)
        pts = [p for s in data.values() for p in s if p[1] > 0]
        body.append(_text(ox + pw / 2, oy - 8, name, 13, "middle", weight="bold"))
        body.append(f'<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#999999"/>')
        if not pts:
            continue
        xs = sorted({p[0] for p in pts})
        lo, hi = math.log10(min(p[1] for p in pts)), math.log10(max(p[1] for p in pts))
        lo, hi = math.floor(lo), math.ceil(hi) if hi > math.floor(lo) else math.floor(lo) + 1

        def px(x):
            return ox + 20 + (xs.index(x) * (pw - 40) / max(1, len(xs) - 1))

        def py(y):
            return oy + ph - (math.log10(y) - lo) / (hi - lo) * ph

        for e in range(lo, hi + 1):
            body.append(f'<line x1="{ox}" y1="{py(10 ** e):.1f}" x2="{ox + pw}" y2="{py(10 ** e):.1f}" stroke="#eeeeee"/>')
            body.append(_text(ox - 4, py(10 ** e) + 4, f"1e{e}", 10, "end"))
        for x in xs:
            body.append(_text(px(x), oy + ph + 14, f"{x}", 10, "middle"))
        body.append(_text(ox + pw / 2, oy + ph + 28, "threads", 10, "middle"))
        for s, p in data.items():
            p = [q for q in p if q[1] > 0]
            if not p:
                continue
            d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in p)
            body.append(f'<polyline points="{d}" fill="none" stroke="{colours[s]}" stroke-width="2"/>')
            for x, y in p:
                body.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colours[s]}"/>')
    body.append(_text(20, 70 + rows * (ph + 70) - 20, "operations per second (log scale)", 11))
    body += _legend(series, [colours[s] for s in series], 60, 70 + rows * (ph + 70) + 10, w)
    return _doc(w, h, body)


def side_by_side(title, pictures):
    """pictures: list of (caption, svg text); each is placed in a column."""
    parts, x, h = [], 0, 0
    for caption, svg in pictures:
        m = re.search(r'<svg[^>]*width="(\d+)"[^>]*height="(\d+)"', svg)
        pw, ph = (int(m.group(1)), int(m.group(2))) if m else (1000, 750)
        inner = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
        inner = re.sub(r"<svg ", f'<svg x="{x}" y="60" ', inner, count=1)
        parts.append(_text(x + pw / 2, 50, caption, 18, "middle", weight="bold"))
        parts.append(inner)
        x += pw
        h = max(h, ph)
    return _doc(x, h + 60, [_text(x / 2, 26, title, 20, "middle", weight="bold")] + parts)
