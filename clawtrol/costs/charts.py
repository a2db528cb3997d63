"""Geometry of the Costs page's SVG charts, computed here so the templates only place shapes and text.

Charts are drawn in a fixed viewBox and scaled by CSS; colours come from CSS classes (theme variables),
never from inline styles (the CSP forbids them). Labels are plain strings: the templates escape them.
"""

from __future__ import annotations

import math
from datetime import date

from ..formatting import money

WIDTH = 560        # bar charts (half-width panels)
TIME_WIDTH = 960   # the over-time chart (a full-width panel)
MAX_BARS = 12  # entities drawn in a bar chart; the table under it lists them all
LABEL_CHARS = 18


def shorten(text: str | None, limit: int = LABEL_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_scale(peak: float, steps: int = 4) -> tuple[float, list[float]]:
    """An axis maximum ≥ peak and its ticks, stepping by 1, 2 or 5 × a power of ten."""
    if peak <= 0:
        return 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    rough = peak / steps
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if rough <= m * power)
    top = step * math.ceil(peak / step - 1e-9)
    ticks = [round(step * i, 10) for i in range(int(round(top / step)) + 1)]
    return top, ticks


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


def tick_label(value: float, step: float) -> str:
    """A short money label for an axis tick: $0, $0.25, $40, $2.5k, $1.2M."""
    if value >= 1_000_000 and step >= 100_000:
        return f"${_trim(f'{value / 1_000_000:,.2f}')}M"
    if value >= 1000 and step >= 100:
        return f"${_trim(f'{value / 1000:,.2f}')}k"
    return f"${_trim(f'{value:,.2f}')}" if step < 1 else f"${_trim(f'{value:,.1f}')}"


def bar_chart(items: list[dict], label_key: str) -> dict:
    """Horizontal paired bars (human-equivalent cost above, AI cost below) per agent or project."""
    shown = items[:MAX_BARS]
    label_w, bar_x, bar_max, row_h, top = 150, 156, 230, 46, 6
    peak = max([max(item["humanCost"], item["aiCost"]) for item in shown] or [0]) or 1.0
    rows = []
    for index, item in enumerate(shown):
        y = top + index * row_h
        name = item.get(label_key) or ""
        human_w = bar_max * max(item["humanCost"], 0) / peak
        ai_w = bar_max * max(item["aiCost"], 0) / peak
        rows.append({
            "name": name, "label": shorten(name), "label_x": label_w, "label_y": y + 21,
            "human_y": y + 2, "ai_y": y + 18, "bar_h": 14, "bar_x": bar_x,
            "human_w": round(max(human_w, 1.0 if item["humanCost"] > 0 else 0.0), 2),
            "ai_w": round(max(ai_w, 1.0 if item["aiCost"] > 0 else 0.0), 2),
            "human_text": f"{money(item['humanCost'])} human",
            "ai_text": f"{money(item['aiCost'])} AI · saved {money(item['savings'])}",
            "human_text_x": round(bar_x + human_w + 6, 2), "ai_text_x": round(bar_x + ai_w + 6, 2),
            "human_text_y": y + 13, "ai_text_y": y + 29,
            "tasks": item["tasks"],
        })
    return {"width": WIDTH, "height": top * 2 + len(shown) * row_h, "rows": rows, "hidden": len(items) - len(shown)}


def _axis_label(bucket: str, period: str) -> str:
    if period == "month":
        year, month = bucket.split("-")
        return f"{date(int(year), int(month), 1):%b %Y}"
    day = date.fromisoformat(bucket)
    return f"{day:%b} {day.day}"


def time_chart(series: list[dict], period: str) -> dict:
    """AI cost against human-equivalent cost per bucket: grouped bars, or two lines when there are many
    buckets. Every bucket keeps its place on the axis, empty ones included."""
    width, height, left, right, top, bottom = TIME_WIDTH, 300, 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(series), 1)
    peak = max([max(p["humanCost"], p["aiCost"]) for p in series] or [0])
    axis_top, ticks = nice_scale(peak)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else axis_top
    band = plot_w / count

    def y_of(value: float) -> float:
        return round(top + plot_h - plot_h * max(value, 0) / axis_top, 2)

    every = max(1, math.ceil(count / 12))
    points = []
    for index, point in enumerate(series):
        x = left + index * band
        bar_w = band * 0.38
        points.append({
            **point,
            "x": round(x, 2), "band": round(band, 2), "mid": round(x + band / 2, 2),
            "human_x": round(x + band * 0.1, 2), "ai_x": round(x + band * 0.1 + bar_w, 2), "bar_w": round(bar_w, 2),
            "human_y": y_of(point["humanCost"]), "ai_y": y_of(point["aiCost"]),
            "human_h": round(top + plot_h - y_of(point["humanCost"]), 2),
            "ai_h": round(top + plot_h - y_of(point["aiCost"]), 2),
            "axis_label": _axis_label(point["date"], period) if index % every == 0 else None,
        })
    lines = count > 62
    return {
        "width": width, "height": height, "left": left, "right": width - right, "top": top,
        "bottom": top + plot_h, "label_y": top + plot_h + 18,
        "ticks": [{"y": y_of(t), "label": tick_label(t, step)} for t in ticks],
        "points": points, "lines": lines,
        "human_line": " ".join(f"{p['mid']},{p['human_y']}" for p in points) if lines else "",
        "ai_line": " ".join(f"{p['mid']},{p['ai_y']}" for p in points) if lines else "",
        "peak": peak,
    }
