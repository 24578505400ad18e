"""data/download.py against a loopback HTTP server laid out like the pinned public copy."""

import functools
import http.server
import importlib.util
import shutil
import threading

import pytest
from testkit import REPO


@pytest.fixture
def download_module():
    spec = importlib.util.spec_from_file_location("download", REPO / "data" / "download.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mirror(tmp_path, data_dir, download_module):
    root = tmp_path / "mirror"
    for name, (path, _) in download_module.FILES.items():
        target = root / download_module.COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / name, target)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_downloads_and_verifies_every_file(tmp_path, mirror, download_module, monkeypatch):
    _, base = mirror
    monkeypatch.setattr(download_module, "BASE", base)
    dest = download_module.download(tmp_path / "out")
    assert sorted(p.name for p in dest.iterdir()) == sorted(download_module.FILES)


def test_an_edited_copy_is_refused(tmp_path, mirror, download_module, monkeypatch):
    root, base = mirror
    edited = root / download_module.COMMIT / "Data" / "Training.csv"
    edited.write_text(edited.read_text().replace("Tuberculosis", "Corona"))
    monkeypatch.setattr(download_module, "BASE", base)
    with pytest.raises(download_module.SourceError, match="checksum mismatch"):
        download_module.download(tmp_path / "out")
    assert not (tmp_path / "out" / "Training.csv").exists()
