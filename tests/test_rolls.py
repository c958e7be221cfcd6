import math

import pytest

from steelscan.coils.rolls import RollTable, Roll, read_rolls
from steelscan.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "rolls.csv"
    p.write_text(text)
    return p


def test_reads_table_and_expected_period(tmp_path):
    t = read_rolls(write(tmp_path, "name,diameter_mm,elongation,stand,surface,installed_at\n"
                                   "W1,650,,F7,top,2026-11-30T06:00:00\nB1,1400,1.25,F6,,\n"))
    assert [r.name for r in t.rolls] == ["W1", "B1"]
    assert t.rolls[0].period_m == pytest.approx(math.pi * 0.65)
    assert t.rolls[1].period_m == pytest.approx(math.pi * 1.4 * 1.25)
    assert t.rolls[0].surface == "top" and t.rolls[1].surface is None
    assert t.periods_m("bottom") == [pytest.approx(math.pi * 1.4 * 1.25)]   # W1 marks only the top


@pytest.mark.parametrize("text, line, field", [
    ("name,diameter_mm\nW1,650\nW2,abc\n", 3, "diameter_mm"),
    ("name,diameter_mm\nW1,-5\n", 2, "diameter_mm"),
    ("name,diameter_mm,elongation\nW1,650,0.5\n", 2, "elongation"),
    ("name,diameter_mm,surface\nW1,650,side\n", 2, "surface"),
    ("name,diameter_mm\nW1,650\nW1,700\n", 3, "name"),
    ("name,diam\nW1,650\n", 1, "diameter_mm"),
    ("name,diameter_mm,colour\nW1,650,red\n", 1, "colour"),
])
def test_bad_rows_name_file_line_field(tmp_path, text, line, field):
    with pytest.raises(ConfigError) as e:
        read_rolls(write(tmp_path, text))
    assert (e.value.line, e.value.field) == (line, field)
    assert str(e.value).startswith(f"{tmp_path / 'rolls.csv'}:{line} [{field}]: ")


def test_match_names_one_roll_within_tolerance():
    t = RollTable((Roll(name="W1", diameter_mm=650), Roll(name="B1", diameter_mm=1400)))
    m = t.match(math.pi * 0.65 * 1.004)          # 0.4 % worn: still W1
    assert m.roll == "W1" and m.ambiguous_rolls == ()
    assert m.implied_diameter_mm == pytest.approx(650 * 1.004)
    m = t.match(math.pi * 0.65 * 1.02)           # 2 % off: no roll, only the implied diameter
    assert m.roll is None and m.ambiguous_rolls == () and m.implied_diameter_mm == pytest.approx(663.0)


def test_rolls_closer_than_tolerance_are_ambiguous_not_guessed():
    t = RollTable((Roll(name="W1", diameter_mm=650), Roll(name="W2", diameter_mm=653),
                   Roll(name="W3", diameter_mm=700)))
    assert t.ambiguous_groups() == [("W1", "W2")]
    m = t.match(math.pi * 0.650)                 # exactly W1, but W2 is 0.5 % away
    assert m.roll is None and set(m.ambiguous_rolls) == {"W1", "W2"}
    assert t.match(math.pi * 0.700).roll == "W3"


def test_surface_restricts_matching():
    t = RollTable((Roll(name="T", diameter_mm=650, surface="top"), Roll(name="U", diameter_mm=652, surface="bottom")))
    assert t.match(math.pi * 0.651, "top").roll == "T"
    assert t.match(math.pi * 0.651, "bottom").roll == "U"
    assert t.ambiguous_groups() == []
