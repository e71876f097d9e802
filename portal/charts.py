"""Trend charts for the results page: one numeric series as inline SVG, rendered on the server.

The SVG reads on a 375 px phone (a viewBox scaled to the width of its box), names itself to screen
readers (`role="img"`, `aria-labelledby` a title and a one-sentence summary), shows the usual range as a
shaded band and every value as a labelled point, and uses presentation attributes only: the portal's
Content-Security-Policy forbids inline styles. The same data comes back as rows for the table beside it.
Every piece of text is escaped; `svg` is safe to insert into a page as markup.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, tzinfo
from html import escape

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton

from locales import ENGLISH, gettext_in, supported
from mappers.dates import MONTHS, date_words
from mappers.results import Point, Series

WIDTH, HEIGHT = 400, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 20, 26, 46
FONT = 14
INSET = 16  # room between the value axis (and the right edge) and the first (last) point
AXIS_FONT = 12
# Horizontal room (viewBox units) a date label and a value label need; closer labels are left out (each
# point keeps its <title>, and the table beside the chart has every value).
DATE_LABEL_GAP = 8
VALUE_LABEL_ROOM = 34
INK, MUTED, LINE, BAND, FLAGGED = "#1b1b1b", "#555555", "#1f5fa8", "#2e7d32", "#b3261e"


@dataclass(frozen=True, slots=True)
class TrendRow:
    date_text: str
    value_text: str
    flag_words: str | None
    flag_symbol: str | None
    flag_key: str | None


@dataclass(frozen=True, slots=True)
class TrendChart:
    chart_id: str
    title: str
    summary: str
    svg: str
    rows: tuple[TrendRow, ...]


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(value: float) -> str:
    """A coordinate: short and locale-free."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _subject(name: str) -> str:
    """`Potassium` -> `potassium`, but `LDL cholesterol` and `A1C` keep their capitals."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


def _english(locale: str) -> bool:
    return supported(locale) in (None, ENGLISH)


def _month(day: date, with_year: bool, locale: str = ENGLISH) -> str:
    if not _english(locale):
        return format_skeleton("yMMMM" if with_year else "MMMM", day, locale=_cldr(locale))
    return f"{MONTHS[day.month - 1]} {day.year}" if with_year else MONTHS[day.month - 1]


def _day_month(day: date, with_year: bool, locale: str) -> str:
    """`4 March`, `20 March 2026` (`4 de marzo`, `20 de marzo de 2026`)."""
    if not _english(locale):
        return format_skeleton("yMMMMd" if with_year else "MMMMd", day, locale=_cldr(locale))
    return f"{day.day} {_month(day, with_year)}"


def _cldr(locale: str) -> str:
    try:
        return str(Locale.parse(locale.replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return ENGLISH


def trend_summary(series: Series, tz: tzinfo | None = None, locale: str = ENGLISH) -> str:
    """"Your potassium went from 4.1 in March to 5.4 in June 2026; the usual range is 3.5 to 5.1 mmol/L.\""""
    subject = _subject(series.name)
    points = series.points
    if not points:
        return gettext_in(locale, "There are no results for your %(subject)s yet.") % {"subject": subject}
    unit = f" {series.unit}" if series.unit and series.unit != "%" else (series.unit or "")
    first, last = points[0], points[-1]
    first_day, last_day = first.effective.local_day(tz), last.effective.local_day(tz)
    values = {"subject": subject, "first": first.number_text, "last": last.number_text, "count": len(points)}
    if len(points) == 1:
        text = gettext_in(locale, "Your %(subject)s was %(value)s on %(day)s") % {
            "subject": subject, "value": f"{first.number_text}{unit}", "day": date_words(first_day, None, locale)}
    else:
        if (first_day.year, first_day.month) == (last_day.year, last_day.month):
            start, end = _day_month(first_day, False, locale), _day_month(last_day, True, locale)
            on_start, on_end = (gettext_in(locale, "on %(day)s") % {"day": d} for d in (start, end))
        else:
            start = _month(first_day, first_day.year != last_day.year, locale)
            end = _month(last_day, True, locale)
            on_start, on_end = (gettext_in(locale, "in %(month)s") % {"month": m} for m in (start, end))
        if len({p.number_text for p in points}) == 1:
            text = gettext_in(locale, "Your %(subject)s stayed at %(first)s from %(start)s to %(end)s "
                                      "(%(count)s results)") % {**values, "start": start, "end": end}
        elif first.number_text == last.number_text:
            # Back where it started: say that it moved in between, never that it "stayed".
            low, high = min(points, key=lambda p: p.value), max(points, key=lambda p: p.value)
            text = gettext_in(locale, "Your %(subject)s was %(first)s %(start)s and %(last)s again %(end)s, "
                                      "between %(low)s and %(high)s in the meantime (%(count)s results)") % {
                **values, "start": on_start, "end": on_end, "low": low.number_text, "high": high.number_text}
        else:
            text = gettext_in(locale, "Your %(subject)s went from %(first)s %(start)s to %(last)s %(end)s "
                                      "(%(count)s results)") % {**values, "start": on_start, "end": on_end}
    if series.range_text:
        text = gettext_in(locale, "%(summary)s; the usual range is %(range)s") % {"summary": text,
                                                                                    "range": series.range_text}
    text += "."
    if last.flag is not None and not last.flag.is_normal:
        text += " " + gettext_in(locale, "The latest result is %(flag)s.") % {"flag": last.flag.words.lower()}
    return text


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(low / step) * step
    ticks, value = [], start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.10g}"


def _date_label(day: date, spans_years: bool, locale: str = ENGLISH) -> str:
    if not _english(locale):
        return format_skeleton("yMMM" if spans_years else "MMMd", day, locale=_cldr(locale))
    month = MONTHS[day.month - 1][:3]
    return f"{month} {day.year}" if spans_years else f"{day.day} {month}"


def _spaced(order: list[int], xs: list[float], room: float) -> set[int]:
    """The indices, taken in priority `order`, whose x is at least `room` from every one already taken."""
    chosen: list[int] = []
    for i in order:
        if i not in chosen and all(abs(xs[i] - xs[j]) >= room for j in chosen):
            chosen.append(i)
    return set(chosen)


def _date_labels(days: list[date], xs: list[float], spans_years: bool,
                 locale: str = ENGLISH) -> list[tuple[int, str, str]]:
    """(index, text-anchor, text) of the date labels that fit without touching: last, first, then the rest."""
    n = len(days)
    taken: list[tuple[float, float]] = []
    found = []
    for i in [n - 1, 0, *range(1, n - 1)] if n > 1 else list(range(n)):
        label = _date_label(days[i], spans_years, locale)
        width = len(label) * AXIS_FONT * 0.6
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        left = xs[i] if anchor == "start" else xs[i] - width if anchor == "end" else xs[i] - width / 2
        span = (left - DATE_LABEL_GAP / 2, left + width + DATE_LABEL_GAP / 2)
        if all(span[1] <= a or span[0] >= b for a, b in taken):
            taken.append(span)
            found.append((i, anchor, label))
    return sorted(found)


def _value_label_order(points: list[Point]) -> list[int]:
    """Newest, oldest, flagged (newest first), highest, lowest, then the rest from newest back."""
    n = len(points)
    flagged = [i for i in range(n - 1, -1, -1) if points[i].flag is not None and not points[i].flag.is_normal]
    by_value = sorted(range(n), key=lambda i: points[i].value)
    return [n - 1, 0, *flagged, by_value[-1], by_value[0], *range(n - 1, -1, -1)]


def _safe_id(chart_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id).strip("-")
    return cleaned if cleaned and cleaned[0].isalpha() else f"chart-{cleaned or 'trend'}"


def trend_chart(series: Series, chart_id: str, tz: tzinfo | None = None, locale: str = ENGLISH) -> TrendChart:
    """The chart (SVG markup), its one-sentence summary and the rows for the accessible table, in `locale` (the
    series' own words, names and values, come in it from `mappers.results`)."""
    cid = _safe_id(chart_id)
    title = gettext_in(locale, "%(name)s over time") % {"name": series.name}
    summary = trend_summary(series, tz, locale)
    rows = tuple(TrendRow(date_words(p.effective.local_day(tz), None, locale), p.value_text,
                          p.flag.words if p.flag else None, p.flag.symbol if p.flag else None,
                          p.flag.key if p.flag else None) for p in series.points)
    return TrendChart(cid, title, summary, _svg(series, cid, title, summary, tz, locale), rows)


def _svg(series: Series, cid: str, title: str, summary: str, tz: tzinfo | None, locale: str = ENGLISH) -> str:
    points = list(series.points)
    values = [p.value for p in points]
    bounds = [b for b in (series.range_low, series.range_high) if b is not None]
    low, high = min(values + bounds, default=0.0), max(values + bounds, default=1.0)
    pad = (high - low) * 0.12 or (abs(high) * 0.1 or 1.0)
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y_of(value: float) -> float:
        return TOP + plot_h - (value - low) / (high - low) * plot_h

    times = [p.effective.sort_key().timestamp() for p in points]
    t0, t1 = (min(times), max(times)) if times else (0.0, 0.0)

    def x_of(t: float) -> float:
        # Points keep clear of the value axis, so the first value's label never sits on its tick labels.
        inner = plot_w - 2 * INSET
        return LEFT + plot_w / 2 if t1 == t0 else LEFT + INSET + (t - t0) / (t1 - t0) * inner

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-labelledby="{_attr(cid)}-title {_attr(cid)}-desc" font-family="sans-serif" font-size="{FONT}">',
        f'<title id="{_attr(cid)}-title">{escape(title)}</title>',
        f'<desc id="{_attr(cid)}-desc">{escape(summary)}</desc>',
    ]
    if bounds:
        usual_range = gettext_in(locale, "Usual range: %(range)s") % {"range": series.range_text or ""}
        legend = gettext_in(locale, "Usual range")
        band_top = y_of(series.range_high) if series.range_high is not None else TOP
        band_bottom = y_of(series.range_low) if series.range_low is not None else TOP + plot_h
        out.append(f'<rect class="trend-band" x="{LEFT}" y="{_fmt(band_top)}" width="{plot_w}" '
                   f'height="{_fmt(max(band_bottom - band_top, 1))}" fill="{BAND}" fill-opacity="0.14">'
                   f'<title>{escape(usual_range)}</title></rect>')
        # A legend above the plot, where no point or label can cover it.
        legend_x = WIDTH - RIGHT - 78
        out.append(f'<g class="trend-legend"><rect x="{legend_x}" y="{TOP - 20}" width="12" height="12" '
                   f'fill="{BAND}" fill-opacity="0.3"/><text x="{legend_x + 16}" y="{TOP - 10}" '
                   f'font-size="{AXIS_FONT}" fill="{INK}">{escape(legend)}</text></g>')
    # Axes and value ticks.
    out.append(f'<g class="trend-axes" stroke="{MUTED}" stroke-width="1">'
               f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>'
               f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}"/></g>')
    for tick in _nice_ticks(low, high):
        y = y_of(tick)
        out.append(f'<text class="trend-tick" x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end" '
                   f'font-size="{AXIS_FONT}" fill="{MUTED}">{escape(_tick_text(tick))}</text>')
    if series.unit:
        out.append(f'<text class="trend-unit" x="{LEFT}" y="{TOP - 10}" font-size="{AXIS_FONT}" '
                   f'fill="{MUTED}">{escape(series.unit)}</text>')
    days = [p.effective.local_day(tz) for p in points]
    axis_title = gettext_in(locale, "Date of test")
    spans_years = bool(days) and days[0].year != days[-1].year
    xs = [x_of(t) for t in times]
    for i, anchor, label in _date_labels(days, xs, spans_years, locale):
        out.append(f'<text class="trend-date" x="{_fmt(xs[i])}" y="{TOP + plot_h + 20}" '
                   f'text-anchor="{anchor}" font-size="{AXIS_FONT}" fill="{MUTED}">{escape(label)}</text>')
    out.append(f'<text class="trend-axis-title" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" '
               f'font-size="{AXIS_FONT}" fill="{MUTED}">{escape(axis_title)}</text>')
    if len(points) > 1:
        line = " ".join(f"{_fmt(x_of(t))},{_fmt(y_of(v))}" for t, v in zip(times, values, strict=True))
        out.append(f'<polyline class="trend-line" points="{line}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    labelled = _spaced(_value_label_order(points), xs, VALUE_LABEL_ROOM) if points else set()
    for i, point in enumerate(points):
        out.append(_point(point, xs[i], y_of(point.value), show_label=i in labelled, tz=tz, locale=locale))
    out.append("</svg>")
    return "".join(out)


def _point(point: Point, x: float, y: float, *, show_label: bool, tz: tzinfo | None, locale: str = ENGLISH) -> str:
    flagged = point.flag is not None and not point.flag.is_normal
    label = point.number_text + (f" {point.flag.symbol}" if flagged and point.flag else "")
    words = f"{date_words(point.effective.local_day(tz), None, locale)}: {point.value_text}"
    if point.flag is not None:
        words += f", {point.flag.words.lower()}"
    css = f"trend-point {point.flag.css_class}" if point.flag else "trend-point"
    colour = FLAGGED if flagged else LINE
    # Flagged values are drawn as diamonds as well as coloured: colour is never the only signal.
    marker = (f'<rect x="{_fmt(x - 4.5)}" y="{_fmt(y - 4.5)}" width="9" height="9" fill="{colour}" '
              f'transform="rotate(45 {_fmt(x)} {_fmt(y)})"/>' if flagged else
              f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="4.5" fill="{colour}"/>')
    text = (f'<text class="trend-value" x="{_fmt(x)}" y="{_fmt(y - 9)}" text-anchor="middle" '
            f'fill="{INK}" font-weight="bold">{escape(label)}</text>') if show_label else ""
    return f'<g class="{_attr(css)}"><title>{escape(words)}</title>{marker}{text}</g>'
