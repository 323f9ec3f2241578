"""The SVG charts (admin/charts.py): well-formed XML, proportional bars, escaped labels, any input drawn."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admin.charts import Series, bar_chart, compact, line_chart, percent, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg"
    for element in root.iter():
        assert not any(v.lower() in ("nan", "inf", "-inf", "infinity") for v in element.attrib.values())
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "bar"]


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter() if element.tag in (f"{SVG}text", f"{SVG}title")]


def test_bar_heights_are_proportional_to_the_values() -> None:
    root = parse(bar_chart(["a", "b", "c", "d"], [10, 20, 40, 0], title="Loans"))
    heights = [float(rect.get("height", "nan")) for rect in bars(root)]
    assert len(heights) == 4 and heights[0] > 0
    assert heights[1] == pytest.approx(2 * heights[0], abs=0.02)
    assert heights[2] == pytest.approx(4 * heights[0], abs=0.02)
    assert heights[3] == 0
    # Every bar stands on the same baseline.
    bottoms = {round(float(rect.get("y", "0")) + float(rect.get("height", "0")), 1) for rect in bars(root)}
    assert len(bottoms) == 1
    assert "Loans" in texts(root)


def test_stacked_segments_add_up_and_the_legend_names_the_series() -> None:
    root = parse(
        stacked_bar_chart(
            ["w1", "w2"], [Series("reminder", [10, 30]), Series("agency", [30, 10])], title="Recovered"
        )
    )
    rects = bars(root)
    assert len(rects) == 4
    totals = [float(rects[0].get("height", "0")) + float(rects[1].get("height", "0")),
              float(rects[2].get("height", "0")) + float(rects[3].get("height", "0"))]  # fmt: skip
    assert totals[0] == pytest.approx(totals[1], abs=0.02)
    assert float(rects[1].get("height", "0")) == pytest.approx(
        3 * float(rects[0].get("height", "0")), abs=0.02
    )
    shown = texts(root)
    assert "reminder" in shown and "agency" in shown


def test_a_line_chart_leaves_gaps_for_missing_values() -> None:
    root = parse(
        line_chart(["a", "b", "c", "d"], [Series("rate", [0.5, None, 0.25, 1.0])], title="Rate", y_max=1.0)
    )
    points = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "point"]
    assert [p.get("data-value") for p in points] == ["0.5", "0.25", "1"]
    lines = [line for line in root.iter(f"{SVG}polyline")]
    assert len(lines) == 1 and len((lines[0].get("points") or "").split()) == 2  # c-d only; a stands alone
    ys = [float(p.get("cy", "0")) for p in points]
    assert ys[2] < ys[0] < ys[1]  # higher values higher up


def test_empty_input_draws_an_empty_chart() -> None:
    for markup in (
        bar_chart([], [], title="Nothing"),
        stacked_bar_chart([], [], title="Nothing"),
        line_chart([], [], title="Nothing"),
        bar_chart(["a", "b"], [0, 0], title="Zeros"),
        line_chart(["a"], [Series("s", [None])], title="Gaps"),
    ):
        root = parse(markup)
        assert all(float(rect.get("height", "0")) == 0 for rect in bars(root))


def test_labels_and_titles_are_escaped() -> None:
    evil = "<script>alert(\"x\")</script> & 'q'"
    for markup in (
        bar_chart([evil], [1], title=evil),
        stacked_bar_chart([evil], [Series(evil, [1])], title=evil),
        line_chart([evil], [Series(evil, [1])], title=evil),
    ):
        assert "<script>" not in markup
        root = parse(markup)
        assert evil in texts(root)
        assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))


def test_bad_numbers_are_drawn_as_zero() -> None:
    root = parse(bar_chart(["a", "b", "c", "d"], [math.nan, math.inf, -5, 2], title="Odd"))
    assert [float(rect.get("height", "0")) > 0 for rect in bars(root)] == [False, False, False, True]


def test_extreme_magnitudes_still_scale() -> None:
    for tiny_or_huge in (5e-324, 1e-300, 1.7e308):
        root = parse(
            stacked_bar_chart(
                ["a", "b"], [Series("s", [tiny_or_huge, 0]), Series("t", [tiny_or_huge, 0])], title="x"
            )
        )
        heights = [float(rect.get("height", "0")) for rect in bars(root)]
        assert heights[0] > 0 and heights[2] == heights[3] == 0
        parse(line_chart(["a"], [Series("s", [tiny_or_huge])], title="x"))


def test_number_formats() -> None:
    assert [compact(v) for v in (0, 7, 2.5, 1_000, 1_250, 3_400_000, 2e9)] == [
        "0", "7", "2.5", "1k", "1.2k", "3.4M", "2B"
    ]  # fmt: skip
    assert percent(0.625) == "62.5%" and percent(math.nan) == "0.0%"


values = st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False)
labels = st.text(max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.tuples(labels, values, st.one_of(st.none(), values)), max_size=20),
    title=st.text(max_size=30),
)
def test_any_non_negative_values_give_parsable_svg(
    data: list[tuple[str, float, float | None]], title: str
) -> None:
    names = [label for label, _, _ in data]
    first = [value for _, value, _ in data]
    second = [value for _, _, value in data]
    for markup in (
        bar_chart(names, first, title=title),
        stacked_bar_chart(names, [Series("one", first), Series(title, second)], title=title),
        line_chart(names, [Series("one", first), Series("two", second)], title=title),
        line_chart(names, [Series("rate", second)], title=title, y_max=1.0),
    ):
        root = parse(markup)
        for element in root.iter():
            for attribute in ("x", "y", "width", "height", "cx", "cy"):
                if (found := element.get(attribute)) is not None and not found.endswith("%"):
                    number = float(found)
                    assert math.isfinite(number) and (attribute not in ("width", "height") or number >= 0)
