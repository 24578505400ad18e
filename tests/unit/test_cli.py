"""The `symptom-dx` command: exit codes and one readable line."""

import json

import pytest
from typer.testing import CliRunner

from operations.cli import app
from symptom_dx.contract import MAX_ELEMENT_CHARS

runner = CliRunner()  # result.stdout and result.stderr apart, result.output both


def test_validate_ok(data_dir):
    result = runner.invoke(app, ["validate", str(data_dir / "Training.csv")])
    assert result.exit_code == 0
    assert result.output.strip() == "ok: 4920 rows, 304 distinct patterns, 41 diseases"


def test_validate_reports_problems(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: invalid dataset {bad}: the file is empty"


def test_symptoms_lookup():
    result = runner.invoke(app, ["symptoms", "itchy skin, hedache, stomache pian"])
    assert result.exit_code == 1
    assert "itching\tItching" in result.output
    assert "headache\tHeadache" in result.output
    assert "not understood: 'stomache pian' (stomach_pain, stomach_bleeding)" in result.output


SENTENCES = {
    "I've been throwing up and have a bad headache but no fever": ["vomiting", "headache"],
    "머리가 아프고 토했어요, 열은 없어요": ["headache", "vomiting"],
}


@pytest.mark.parametrize("text", SENTENCES)
def test_symptoms_reads_sentences_with_negation(text):
    result = runner.invoke(app, ["symptoms", text])
    assert result.exit_code == 0, result.stderr
    labels = {"vomiting": "Vomiting", "headache": "Headache"}
    expected = [f"{sid}\t{labels[sid]}" for sid in SENTENCES[text]]
    assert result.stdout.splitlines() == [*expected, "no\thigh_fever\tHigh fever"]
    assert result.stderr == ""


def test_symptoms_json_is_exactly_the_three_lists():
    text = "머리가 아프고 토했어요, 열은 없어요, 뭔가 이상함"
    result = runner.invoke(app, ["symptoms", "--json", text])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout) == {
        "present": ["headache", "vomiting"],
        "absent": ["high_fever"],
        "not_understood": ["뭔가 이상함"],
    }
    assert result.stdout.count("\n") == 1  # one line
    # only a denial is still something understood
    denied = runner.invoke(app, ["symptoms", "--json", "no fever"])
    assert denied.exit_code == 0
    assert json.loads(denied.stdout)["absent"] == ["high_fever"]


@pytest.mark.parametrize("text", ["banana bread", "", "   "])
def test_symptoms_nothing_understood_exits_1(text):
    result = runner.invoke(app, ["symptoms", "--json", text])
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["present"] == answer["absent"] == []
    plain = runner.invoke(app, ["symptoms", text])
    assert plain.exit_code == 1 and plain.stdout == ""
    assert plain.stderr.strip()  # says why


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_symptoms_too_long_is_one_readable_line(as_json):
    text = "headache " * (MAX_ELEMENT_CHARS // 9 + 1)
    result = runner.invoke(app, ["symptoms", *as_json, text])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: the text has {len(text)} characters; at most {MAX_ELEMENT_CHARS} are read"
    ]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_symptoms_help_says_what_the_exit_codes_mean():
    result = runner.invoke(app, ["symptoms", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--json" in result.output
    assert "exits 0 when at least one symptom was found" in result.output
    assert "1 when none was" in result.output


def test_the_installed_command_ends_at_once(monkeypatch):
    """`symptom-dx` (the console script) starts where `python -m operations.cli` does: in
    ``main``, which skips the last garbage collection at exit (symptom_dx.process_exit)."""
    from importlib.metadata import entry_points

    import operations.cli as cli

    (script,) = entry_points(group="console_scripts", name="symptom-dx")
    assert script.load() is cli.main
    calls = []
    monkeypatch.setattr(cli, "skip_final_collection", lambda: calls.append("skip"))
    monkeypatch.setattr(cli, "app", lambda: calls.append("app"))
    cli.main()
    assert calls == ["skip", "app"]
