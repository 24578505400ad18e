"""The local stack's one certificate helper, as the cluster scripts and the local S3 call it."""

import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipelines.local_stack.pki import PkiError, make_ca, make_cert


def test_a_certificate_is_signed_by_its_ca_with_its_subject_usage_and_names(tmp_path):
    make_ca(tmp_path, "ca", "test-ca")
    make_cert(tmp_path, "admin", "ca", "/O=system:masters/CN=kubernetes-admin", "clientAuth")
    make_cert(
        tmp_path, "api", "ca", "/CN=kube-apiserver", "serverAuth", "DNS:kubernetes,IP:10.0.0.1"
    )
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    admin = x509.load_pem_x509_certificate((tmp_path / "admin.crt").read_bytes())
    api = x509.load_pem_x509_certificate((tmp_path / "api.crt").read_bytes())
    for cert in (admin, api):
        cert.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:masters"
    )
    usage = api.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kubernetes"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    assert (tmp_path / "api.key").stat().st_mode & 0o777 == 0o600


def test_what_exists_is_kept(tmp_path):
    first = make_ca(tmp_path, "ca", "test-ca").read_bytes()
    assert make_ca(tmp_path, "ca", "another").read_bytes() == first


@pytest.mark.parametrize(
    ("subject", "usage", "sans"),
    [("/X=1", "serverAuth", ""), ("/CN=a", "codeSigning", ""), ("/CN=a", "serverAuth", "URI:x")],
)
def test_what_it_does_not_read_is_refused(tmp_path, subject, usage, sans):
    make_ca(tmp_path, "ca", "test-ca")
    with pytest.raises(PkiError):
        make_cert(tmp_path, "bad", "ca", subject, usage, sans)
    assert not (tmp_path / "bad.crt").exists()


def test_the_command_says_what_is_wrong_in_one_line(tmp_path):
    make_ca(tmp_path, "ca", "test-ca")
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.local_stack.pki", "cert", "x", "ca", "/CN=a", "sign"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr == "pki: usage 'sign': use serverAuth, clientAuth or both\n"
