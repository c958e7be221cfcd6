"""The periodic (roll-mark) detector on generated defect lists with known truth."""

import csv
import json
import math

import numpy as np
import pytest

from steelscan.cli import main
from steelscan.coils.defect_list import read_defect_list
from steelscan.coils.periodic import PeriodicDetector, find_periodic
from steelscan.coils.rolls import Roll, RollTable
from steelscan.coils.synthetic_defects import MarkSpec, make_coil

TABLE = RollTable((Roll(name="W1", diameter_mm=650), Roll(name="W2", diameter_mm=520),
                   Roll(name="B1", diameter_mm=1400), Roll(name="W1b", diameter_mm=672)))   # W1b: 3.4 % from W1


def share(finding, coil, mark: int) -> float:
    """Fraction of the mark's defects that the finding holds."""
    ids = set(finding.defect_ids)
    mine = coil.defects.ids[coil.truth == mark]
    return sum(i in ids for i in mine) / len(mine)


def owner(finding, coil) -> int:
    truth = coil.truth[np.isin(coil.defects.ids, finding.defect_ids)]
    vals, counts = np.unique(truth, return_counts=True)
    return int(vals[np.argmax(counts)])


def test_one_worn_drifting_mark_among_random_defects_is_found_once_and_named():
    rng = np.random.default_rng(7)
    mark = MarkSpec(period_m=math.pi * 0.650 * 1.004, phase_m=0.9, across_mm=600, drift_mm=50, class_id=3)
    coil = make_coil(rng, length_m=300, marks=[mark], random_per_m=2.0)
    found = find_periodic(coil.defects, TABLE)
    assert len(found) == 1
    f = found[0]
    assert (f.surface, f.roll, f.class_ids) == ("top", "W1", [3])
    assert f.period_m == pytest.approx(mark.period_m, rel=5e-4)
    assert share(f, coil, 0) > 0.9 and owner(f, coil) == 0
    assert f.confidence >= 0.999 and f.occurrences >= 0.9 * (coil.truth == 0).sum()


def test_several_rolls_at_once_and_a_mark_whose_class_changes():
    rng = np.random.default_rng(3)
    marks = [MarkSpec(period_m=math.pi * 0.650, phase_m=0.2, across_mm=300),
             MarkSpec(period_m=math.pi * 0.520, phase_m=1.0, across_mm=1100, class_flip=0.4),
             MarkSpec(period_m=math.pi * 1.400, surface="bottom", phase_m=2.0, across_mm=800, class_id=2)]
    coil = make_coil(rng, length_m=400, marks=marks, random_per_m=1.5)
    found = find_periodic(coil.defects, TABLE)
    assert sorted(owner(f, coil) for f in found) == [0, 1, 2]   # one finding per mark, nothing else
    by_mark = {owner(f, coil): f for f in found}
    assert [by_mark[k].roll for k in range(3)] == ["W1", "W2", "B1"]
    assert by_mark[2].surface == "bottom"
    assert len(by_mark[1].class_ids) > 1            # one mark, several classes, one finding


def test_random_defects_alone_raise_nothing():
    rng = np.random.default_rng(11)
    for k in range(4):
        coil = make_coil(rng, length_m=400, random_per_m=2.0, coil_id=f"R{k}")
        assert find_periodic(coil.defects, TABLE) == []


def test_unknown_roll_gives_the_implied_diameter():
    rng = np.random.default_rng(5)
    coil = make_coil(rng, length_m=200, marks=[MarkSpec(period_m=math.pi * 0.800, phase_m=0.5)], random_per_m=0.5)
    (f,) = find_periodic(coil.defects, TABLE)
    assert f.roll is None and f.ambiguous_rolls == []
    assert f.implied_diameter_mm == pytest.approx(800, rel=2e-3)


def test_incremental_detector_alarms_once_within_a_period_of_the_fifth_occurrence():
    rng = np.random.default_rng(2)
    mark = MarkSpec(period_m=math.pi * 0.650, phase_m=0.3, start_m=50, across_mm=500)
    coil = make_coil(rng, length_m=90, marks=[mark], random_per_m=2.0)
    d = coil.defects
    fifth = np.sort(d.start_m[coil.truth == 0])[4]
    det = PeriodicDetector("c1", TABLE)
    alarms = []
    for k in range(len(d)):   # defects arrive in order along the strip; ask after every third (~1.5 m)
        det.add(d.surface[k], d.class_id[k], d.start_m[k], d.across_start_mm[k], d.across_end_mm[k], d.ids[k])
        for a in (det.new_alarms() if k % 3 == 2 or k == len(d) - 1 else []):
            alarms.append((float(d.start_m[k]), a))
    assert len(alarms) == 1
    at, a = alarms[0]
    assert a.roll == "W1" and a.occurrences >= 5
    assert at <= fifth + mark.period_m


def test_cli_json_and_table(tmp_path, capsys):
    rng = np.random.default_rng(9)
    coil = make_coil(rng, length_m=150, marks=[MarkSpec(period_m=math.pi * 0.52, phase_m=0.4, across_mm=700)],
                     random_per_m=1.0)
    d = coil.defects
    csv = tmp_path / "defects.csv"   # no coil_id column: one coil; extra columns ignored
    csv.write_text("surface,class_id,start_m,across_start_mm,across_end_mm,score\n" + "".join(
        f"{d.surface[k]},{d.class_id[k]},{d.start_m[k]:.4f},{d.across_start_mm[k]:.1f},{d.across_end_mm[k]:.1f},0.9\n"
        for k in range(len(d))))
    (tmp_path / "rolls.csv").write_text("name,diameter_mm\nW1,650\nW2,520\n")
    assert main(["coil", "periodic", "--defects", str(csv), "--rolls", str(tmp_path / "rolls.csv"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (f,) = out["findings"]
    assert (f["coil_id"], f["surface"], f["roll"]) == ("coil", "top", "W2")
    for key in ("class_ids", "period_m", "implied_diameter_mm", "ambiguous_rolls", "occurrences", "first_m",
                "last_m", "across_mm", "confidence"):
        assert key in f
    assert main(["coil", "periodic", "--defects", str(csv), "--rolls", str(tmp_path / "rolls.csv")]) == 0
    assert "W2" in capsys.readouterr().out


def test_cli_reads_a_stored_coil_from_the_database(tmp_path, capsys):
    from steelscan.coils.records import CoilInfo, DefectRecord
    from steelscan.coils.store import CoilStore

    rng = np.random.default_rng(9)
    coil = make_coil(rng, length_m=150, marks=[MarkSpec(period_m=math.pi * 0.52, phase_m=0.4, across_mm=700)],
                     random_per_m=1.0)
    d = coil.defects
    db = tmp_path / "coils.db"
    with CoilStore(str(db)) as store:
        store.upsert_coil(CoilInfo("K7", length_m=150.0))
        store.add_defects([DefectRecord("K7", str(d.surface[k]), "top", int(d.class_id[k]), "c", 0.9,
                                        float(d.start_m[k]), float(d.start_m[k]) + 0.01,
                                        float(d.across_start_mm[k]), float(d.across_end_mm[k]), 10.0,
                                        float(d.across_end_mm[k] - d.across_start_mm[k]), 50.0)
                           for k in range(len(d))])
    (tmp_path / "rolls.csv").write_text("name,diameter_mm\nW1,650\nW2,520\n")
    args = ["coil", "periodic", "--rolls", str(tmp_path / "rolls.csv"), "--json"]
    assert main([*args, "--coil", "K7", "--db", str(db)]) == 0
    (f,) = json.loads(capsys.readouterr().out)["findings"]
    assert (f["coil_id"], f["surface"], f["roll"]) == ("K7", "top", "W2")
    # the same coil exported to CSV gives the same finding
    assert main(["coil", "export", "K7", "--db", str(db), "--csv", str(tmp_path / "k7.csv")]) == 0
    capsys.readouterr()
    assert main([*args, "--defects", str(tmp_path / "k7.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == [f]
    assert main([*args, "--coil", "NOPE", "--db", str(db)]) == 2
    assert "no coil 'NOPE'" in capsys.readouterr().err
    assert main([*args, "--coil", "K7"]) == 2
    assert "--coil needs --db" in capsys.readouterr().err
    # grading reads the stored coil too: its level-2 length and the roll mark -> HOLD
    assert main(["coil", "grade", "--rules", "default", "--coil", "K7", "--db", str(db), "--json"]) == 0
    (g,) = json.loads(capsys.readouterr().out)["coils"]
    assert g["coil_id"] == "K7" and g["length_m"] == 150.0 and g["decision"] in ("HOLD", "REJECT")
    assert any(r["rule"] == "roll-mark" for r in g["reasons"])


def test_bad_defect_list_is_one_line_naming_file_line_field(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("coil_id,surface,class_id,start_m,across_start_mm,across_end_mm\n"
                   "C1,top,1,1.5,10,20\nC1,top,1,abc,10,20\n")
    assert main(["coil", "periodic", "--defects", str(csv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"steelscan coil: error: {csv}:3 [start_m]: not a finite number: 'abc'"]
    csv.write_text("coil_id,surface,start_m,across_start_mm,across_end_mm\nC1,top,1.5,10,20\n")
    with pytest.raises(Exception) as e:
        read_defect_list(csv)
    assert getattr(e.value, "field", None) == "class_id"


def test_roll_marks_of_steelscan_synth_coil_are_found_and_named(tmp_path, capsys):
    """The coil generator's own truth (roll marks drawn by `steelscan synth-coil`): every roll found once."""
    out = tmp_path / "coil"
    assert main(["synth-coil", "--out", str(out), "--length-m", "150", "--width-mm", "1200", "--seed", "5",
                 "--coils", "1", "--roll-diameter-mm", "650", "1400", "--miss-rate", "0.3", "--jitter-mm", "3",
                 "--wear", "0.004", "--wander-mm", "50", "--truth-only"]) == 0
    capsys.readouterr()
    assert main(["coil", "periodic", "--defects", str(out / "defects.csv"), "--rolls", str(out / "rolls.csv"),
                 "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["findings"]
    truth = {}
    for row in csv.DictReader((out / "defects.csv").open()):
        if row["source"].startswith("roll:"):
            truth.setdefault((row["surface"], row["source"][5:]), []).append(row)
    assert sorted((f["surface"], f["roll"]) for f in found) == sorted(truth)
    for f in found:
        assert f["occurrences"] >= 0.9 * len(truth[(f["surface"], f["roll"])])
