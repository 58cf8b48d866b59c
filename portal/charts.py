"""Stacked bar charts drawn on the server as inline SVG: no JavaScript, no CDN, prints well."""

from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 260
MARGIN_LEFT = 44
MARGIN_BOTTOM = 28
MARGIN_TOP = 10
PALETTE = ["#2f6f4f", "#4f8fd6", "#d64f4f", "#d6a14f", "#7a7a7a", "#8a5fbf", "#3fb3b3"]


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list = field(default_factory=list)  # one per month: label, total, segments
    legend: list = field(default_factory=list)  # (label, colour)
    ticks: list = field(default_factory=list)  # (y, label) of the vertical axis
    series: list = field(default_factory=list)  # (label, values) as given
    rows: list = field(default_factory=list)  # (month label, values per series, total): the table version
    month_labels: list = field(default_factory=list)
    baseline: int = 0
    left: int = MARGIN_LEFT


def _nice_max(value):
    """A round top for the axis: 1, 2, 5, 10, 20, 50..."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


SHORT_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
                "déc.")


def month_label(day):
    """Axis label: ``"déc. 26"``."""
    return f"{SHORT_MONTHS[day.month - 1]} {day.year % 100:02d}"


def stacked_bars(title, months, series, colours=None):
    """Build a Chart: ``series`` is a list of (label, values per month), stacked bottom up."""
    colours = colours or PALETTE
    chart = Chart(title=title)
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    plot_width = WIDTH - MARGIN_LEFT - 8
    chart.baseline = MARGIN_TOP + plot_height
    totals = [sum(values[i] for _, values in series) for i in range(len(months))]
    top = _nice_max(max(totals, default=0))
    scale = plot_height / top
    slot = plot_width / max(len(months), 1)
    bar_width = slot * 0.6
    chart.legend = [(label, colours[i % len(colours)]) for i, (label, _) in enumerate(series)]
    chart.series = series
    chart.month_labels = [month_label(m) for m in months]
    for step in range(5):
        value = top * step / 4
        label = f"{value:g}" if value == int(value) else ""
        chart.ticks.append((round(chart.baseline - value * scale, 1), label))
    for i in range(len(months)):
        x = MARGIN_LEFT + i * slot + (slot - bar_width) / 2
        y = chart.baseline
        segments = []
        for k, (label, values) in enumerate(series):
            height = values[i] * scale
            if values[i]:
                y -= height
                segments.append({"x": round(x, 1), "y": round(y, 1), "width": round(bar_width, 1),
                                 "height": round(height, 1), "colour": colours[k % len(colours)],
                                 "title": f"{label} : {values[i]}"})
        chart.bars.append({"label": chart.month_labels[i], "total": totals[i], "segments": segments,
                           "label_x": round(x + bar_width / 2, 1)})
    chart.rows = [(chart.month_labels[i], [values[i] for _, values in series], totals[i])
                  for i in range(len(months))]
    return chart
