"""``python -m serving``'s flags: KServe's parser plus ours, as the manifests pass them."""

from __future__ import annotations

import pytest

from serving.__main__ import build_parser, main
from symptom_dx.contract import HEADER_TIMEOUT_S, MODEL_NAME


def test_the_flags_the_serving_runtime_passes():
    args = build_parser().parse_args(
        [
            "--model_name=disease-classifier",
            "--model_dir=/mnt/models",
            "--http_port=8080",
            "--grpc_port=8081",
            "--bind_address=0.0.0.0",
            "--model_sha256=" + "ab" * 32,
        ]
    )
    assert (args.model_name, args.model_dir, args.http_port, args.grpc_port) == (
        "disease-classifier",
        "/mnt/models",
        8080,
        8081,
    )
    assert args.bind_address == "0.0.0.0" and args.model_sha256 == "ab" * 32


def test_defaults_are_safe_for_a_local_run(monkeypatch):
    for name in ("MODEL_DIR", "MODEL_SHA256", "SERVING_BIND_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    args = build_parser().parse_args([])
    assert args.model_name == MODEL_NAME and args.bind_address == "127.0.0.1"
    assert args.fast_path and not args.allow_repository_changes and not args.access_log
    assert not args.enable_latency_logging and args.model_sha256 == ""
    assert args.header_timeout == HEADER_TIMEOUT_S


def test_the_environment_gives_the_model_and_its_digest(monkeypatch):
    monkeypatch.setenv("MODEL_DIR", "s3://bucket/model")
    monkeypatch.setenv("MODEL_SHA256", "cd" * 32)
    args = build_parser().parse_args(["--fast_path", "false", "--allow_repository_changes", "1"])
    assert args.model_dir == "s3://bucket/model" and args.model_sha256 == "cd" * 32
    assert args.fast_path is False and args.allow_repository_changes is True


def test_help_lists_our_flags(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model_sha256", "--fast_path", "--allow_repository_changes", "--header_timeout"):
        assert flag in out


def test_a_missing_model_exits_2_with_one_line(tmp_path, monkeypatch, server_log):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "nope"))  # as the image is given its model
    assert main([]) == 2
    lines = [line for line in server_log.lines if "cannot serve" in line]
    assert len(lines) == 1 and f"model directory {tmp_path / 'nope'} does not exist" in lines[0]


def test_a_model_file_other_than_the_registered_one_exits_2(trained_model_dir, server_log):
    assert main(["--model_dir", str(trained_model_dir), "--model_sha256", "ab" * 32]) == 2
    lines = [line for line in server_log.lines if "cannot serve" in line]
    assert len(lines) == 1 and "refusing to unpickle" in lines[0]
