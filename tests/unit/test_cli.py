"""The `symptom-dx` command: exit codes and one readable line."""

from typer.testing import CliRunner

from symptom_dx.cli import app

runner = CliRunner()


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
    result = runner.invoke(app, ["symptoms", "itchy skin, hedache x"])
    assert result.exit_code == 1
    assert "itching\tItching" in result.output
    assert "not understood: 'hedache x' (headache)" in result.output
