"""symptom_dx.kaggle (behind data/download.py) against a loopback HTTP server laid out like the
pinned public copy."""

import functools
import http.server
import shutil
import subprocess
import sys
import threading

import pytest
from testkit import REPO

from symptom_dx import kaggle
from symptom_dx.errors import SourceError


@pytest.fixture
def mirror(tmp_path, data_dir):
    root = tmp_path / "mirror"
    for name, (path, _) in kaggle.FILES.items():
        target = root / kaggle.COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / name, target)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_downloads_and_verifies_every_file(tmp_path, mirror):
    _, base = mirror
    dest = kaggle.download(tmp_path / "out", base=base)
    assert sorted(p.name for p in dest.iterdir()) == sorted(kaggle.FILES)


def test_an_edited_copy_is_refused(tmp_path, mirror):
    root, base = mirror
    edited = root / kaggle.COMMIT / "Data" / "Training.csv"
    edited.write_text(edited.read_text().replace("Tuberculosis", "Corona"))
    with pytest.raises(SourceError, match="checksum mismatch"):
        kaggle.download(tmp_path / "out", base=base)
    assert not (tmp_path / "out" / "Training.csv").exists()


def test_the_script_is_a_thin_command():
    out = subprocess.run(
        [sys.executable, str(REPO / "data" / "download.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "folder to download into" in out.stdout
