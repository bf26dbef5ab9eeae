"""kmsnap.config.review: what a pull request's change to kmsnap.yaml would hide in its review."""

from __future__ import annotations

from pathlib import Path

import pytest
from diff_sample import sample_pair

from kmsnap.compare import Rules, compare_snapshots
from kmsnap.config import load_config
from kmsnap.config.review import main, render_config_review, review_config_change
from kmsnap.model import Severity
from kmsnap.snapshot.store import save_snapshot


def config(tmp_path: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_config(path=path)


def test_excluding_a_product_hides_its_changes_and_says_breaking(tmp_path: Path) -> None:
    old, new = sample_pair()
    base = config(tmp_path, "base.yaml", "")
    pr = config(tmp_path, "pr.yaml", 'exclude:\n  products: ["Web"]\n')
    everything = compare_snapshots(old, new)
    kept = compare_snapshots(old, new, rules=Rules.from_config(pr))
    review = review_config_change(base, pr, old, new)
    assert review.hidden_changes == len(everything.changes) - len(kept.changes) > 0
    assert review.severity == Severity.BREAKING
    assert [(s.key, s.added, s.removed) for s in review.selection] == [
        ("exclude.products", ("Web",), ())
    ]
    text = render_config_review(review)
    assert text.startswith("### kmsnap.yaml changes in this pull request (breaking)\n")
    assert "`exclude.products` newly excludes `Web`" in text
    breaking = sum(c.severity == Severity.BREAKING for c in review.hidden.changes)  # type: ignore[union-attr]
    assert f"would hide **{review.hidden_changes} changes ({breaking} breaking)**" in text
    assert text.count("\n- breaking: ") == breaking


def test_ignoring_a_field_hides_changes_that_touch_it(tmp_path: Path) -> None:
    old, new = sample_pair()
    base = config(tmp_path, "base.yaml", "")
    shown = compare_snapshots(old, new)
    changed = next(c for c in shown.changes if c.change == "changed" and c.fields)
    field = next(iter(changed.fields or {})).split(".")[0]
    pr = config(
        tmp_path, "pr.yaml", f"ignore_fields:\n  {changed.kind}:\n    {field}: not ours\n"
    )
    review = review_config_change(base, pr, old, new)
    assert [(i.kind, i.field, i.reason) for i in review.newly_ignored] == [
        (changed.kind, field, "not ours")
    ]
    assert changed in review.hidden.changes  # type: ignore[union-attr]
    assert f"newly ignores `{changed.kind}.{field}` (not ours)" in render_config_review(review)


def test_a_change_that_hides_nothing_still_says_what_it_changed(tmp_path: Path) -> None:
    old, new = sample_pair()
    base = config(tmp_path, "base.yaml", 'exclude:\n  products: ["Nowhere"]\n')
    pr = config(tmp_path, "pr.yaml", "fail_on: breaking\n")
    review = review_config_change(base, pr, old, new)
    assert review.hidden_changes == 0 and review.severity is None
    text = render_config_review(review)
    assert "`exclude.products` no longer excludes `Nowhere`" in text
    assert "would hide none" in text
    # The same selection and ignore rules: nothing to say.
    same = config(tmp_path, "same.yaml", "fail_on: warning\n")
    assert render_config_review(review_config_change(pr, same, old, new)) == ""


def test_the_list_of_hidden_changes_is_bounded(tmp_path: Path) -> None:
    old, new = sample_pair()
    review = review_config_change(
        config(tmp_path, "a.yaml", ""),
        config(tmp_path, "b.yaml", 'exclude:\n  accounts: ["Acme", "Globex"]\n'),
        old,
        new,
    )
    assert review.hidden_changes > 3
    text = render_config_review(review, limit=600)
    assert len(text) <= 600
    assert "more\n" in text


def test_main_reads_configs_and_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = sample_pair()
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new")
    (tmp_path / "base.yaml").write_text("")
    (tmp_path / "pr.yaml").write_text('exclude:\n  products: ["Web"]\n')
    args = [str(tmp_path / n) for n in ("base.yaml", "pr.yaml", "old", "new")]
    assert main(args) == 0
    assert "(breaking)" in capsys.readouterr().out
    # The pull request's own kmsnap.yaml may be anything: said, not a crash.
    (tmp_path / "pr.yaml").write_text("exclude: [1, 2\n")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "- its kmsnap.yaml is not valid: kmsnap\\.yaml\\:" in out
    assert "pr.yaml" not in out and "would hide" not in out
    # A snapshot that cannot be read is an error naming it.
    args[2] = str(tmp_path / "missing")
    assert main(args) == 1
    assert "missing" in capsys.readouterr().err


def test_every_report_says_what_include_and_exclude_left_out(tmp_path: Path) -> None:
    from kmsnap.render.changes import render_text
    from kmsnap.render.markdown import render_markdown

    old, new = sample_pair()
    rules = Rules.from_config(
        config(tmp_path, "k.yaml", 'include:\n  accounts: ["Acme"]\nexclude:\n  products: [Web]\n')
    )
    cs = compare_snapshots(old, new, rules=rules)
    assert cs.selected == {"include.accounts": ["Acme"], "exclude.products": ["Web"]}
    text = render_text(cs)
    assert 'Selected by kmsnap.yaml: exclude.products: "Web"\n' in text
    assert 'Selected by kmsnap.yaml: include.accounts: "Acme"\n' in text
    markdown = render_markdown(cs)
    assert "Selected by kmsnap.yaml (the rest is not compared):" in markdown
    assert '- <sub>exclude\\.products\\: "Web"</sub>' in markdown
    assert compare_snapshots(old, new).selected == {}  # nothing said when nothing is left out
