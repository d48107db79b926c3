"""Server-rendered SVG charts: stacked columns per period, one colour per group (no script, no inline
style: presentation attributes only, which the strict CSP allows). Text is escaped; each chart has a
``<title>`` and ``role="img"`` for screen readers, and the same numbers are in a table beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#2d5be3", "#e07b00", "#1a9e5f", "#b3261e", "#7a4cc2", "#5b6475")
W, H, PAD_L, PAD_B, PAD_T = 720, 240, 64, 28, 10


def _nice(value: float) -> float:
    if value <= 0:
        return 1
    exp = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def stacked_columns(
    title: str,
    periods: Sequence[str],
    series: Mapping[str, Sequence[float]],
    fmt: str = "{:,.0f}",
) -> Markup:
    """``series``: group -> one value per period (same order as ``periods``)."""
    totals = [sum(vals[i] for vals in series.values()) for i in range(len(periods))]
    top = _nice(max(totals, default=0))
    plot_w, plot_h = W - PAD_L - 8, H - PAD_B - PAD_T
    n = max(len(periods), 1)
    col = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" aria-labelledby="chart-title" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>'
    ]
    for i in range(5):  # grid and y labels
        y = PAD_T + plot_h * i / 4
        parts.append(f'<line x1="{PAD_L}" x2="{W - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dde1e8"/>')
        label = fmt.format(top * (4 - i) / 4)
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#3d4556">'
                     f"{escape(label)}</text>")  # fmt: skip
    for i, period in enumerate(periods):
        base = float(PAD_T + plot_h)
        x = PAD_L + i * col + col * 0.15
        for k, vals in enumerate(series.values()):
            v = vals[i]
            if v <= 0:
                continue
            h = plot_h * v / top
            base -= h
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{col * 0.7:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"/>')  # fmt: skip
        if n <= 14 or i % max(1, n // 12) == 0:
            parts.append(f'<text x="{x + col * 0.35:.1f}" y="{H - 10}" text-anchor="middle" font-size="11" '
                         f'fill="#3d4556">{escape(period)}</text>')  # fmt: skip
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def legend(groups: Sequence[str]) -> list[tuple[str, str]]:
    return [(g, PALETTE[k % len(PALETTE)]) for k, g in enumerate(groups)]
