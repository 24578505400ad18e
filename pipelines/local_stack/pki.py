"""The one certificate helper of the local stack: certificate authorities and the certificates
they sign, for the local S3's mutual TLS (``pipelines.local_stack.seaweedfs``) and the local
cluster's PKI (``scripts/cluster/lib.sh`` runs this module)::

    python -m pipelines.local_stack.pki ca NAME COMMON_NAME
    python -m pipelines.local_stack.pki cert NAME CA SUBJECT USAGE [SANS]

write ``NAME.crt`` and ``NAME.key`` into the current folder, and keep them if they exist.
SUBJECT is OpenSSL's form (``/O=system:masters/CN=kubernetes-admin``), USAGE ``serverAuth``,
``clientAuth`` or both (comma-separated), SANS ``DNS:name,IP:address``. Keys are ECDSA P-256,
which every part of Kubernetes and SeaweedFS accepts (kubeadm's ``ECDSA-P256``).
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from pathlib import Path
from typing import Any

VALID_DAYS = 3650
_NAME_ATTRIBUTES = {"CN": "COMMON_NAME", "O": "ORGANIZATION_NAME", "OU": "ORGANIZATIONAL_UNIT_NAME"}
_USAGES = {"serverAuth": "SERVER_AUTH", "clientAuth": "CLIENT_AUTH"}


class PkiError(ValueError):
    """A subject, usage or SAN this helper does not read."""


def make_ca(folder: Path, name: str, common_name: str, days: int = VALID_DAYS) -> Path:
    """A self-signed CA ``NAME.crt``/``NAME.key`` in ``folder`` (kept if it exists)."""
    from cryptography import x509

    crt = folder / f"{name}.crt"
    if crt.exists():
        return crt
    key = _new_key()
    subject = _subject(f"/CN={common_name}")
    builder = _builder(subject, subject, key.public_key(), days)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    builder = builder.add_extension(_key_usage(signs_certificates=True), True)
    return _write(folder, name, builder, key, key)


def make_cert(
    folder: Path,
    name: str,
    ca: str,
    subject: str,
    usage: str,
    sans: str = "",
    days: int = VALID_DAYS,
) -> Path:
    """``NAME.crt``/``NAME.key`` in ``folder`` signed by the CA ``CA.crt``/``CA.key`` there
    (kept if it exists)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    crt = folder / f"{name}.crt"
    if crt.exists():
        return crt
    ca_cert = x509.load_pem_x509_certificate((folder / f"{ca}.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / f"{ca}.key").read_bytes(), None)
    try:
        usages = [getattr(ExtendedKeyUsageOID, _USAGES[u]) for u in usage.split(",")]
    except KeyError:
        raise PkiError(f"usage {usage!r}: use serverAuth, clientAuth or both") from None
    key = _new_key()
    builder = _builder(_subject(subject), ca_cert.subject, key.public_key(), days)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(_key_usage(signs_certificates=False), True)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_sans(sans)), False)
    return _write(folder, name, builder, key, ca_key)


def _key_usage(signs_certificates: bool) -> Any:
    """Signatures only (ECDSA keys encipher nothing), and certificates and CRLs for a CA."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _subject(text: str) -> Any:
    """OpenSSL's ``/O=x/CN=y`` as an X.509 name, in that order."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attributes = []
    for part in filter(None, text.split("/")):
        key, sep, value = part.partition("=")
        if not sep or key not in _NAME_ATTRIBUTES or not value:
            raise PkiError(f"subject {text!r}: use /O=.../CN=... (CN, O, OU)")
        attributes.append(x509.NameAttribute(getattr(NameOID, _NAME_ATTRIBUTES[key]), value))
    return x509.Name(attributes)


def _sans(text: str) -> list[Any]:
    from cryptography import x509

    names: list[Any] = []
    for item in text.split(","):
        kind, _, value = item.strip().partition(":")
        if kind == "DNS" and value:
            names.append(x509.DNSName(value))
        elif kind == "IP" and value:
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            raise PkiError(f"subject alternative name {item!r}: use DNS:name or IP:address")
    return names


def _builder(subject: Any, issuer: Any, public_key: Any, days: int) -> Any:
    from cryptography import x509

    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks of other processes
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _write(folder: Path, name: str, builder: Any, key: Any, signing_key: Any) -> Path:
    """The key first (0600, before it holds anything), then the certificate: a certificate on
    disk always has its key."""
    from cryptography.hazmat.primitives import hashes, serialization

    pem = serialization.Encoding.PEM
    key_path, crt = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    crt.write_bytes(builder.sign(signing_key, hashes.SHA256()).public_bytes(pem))
    return crt


def main(argv: list[str]) -> int:
    usage = (
        "usage: python -m pipelines.local_stack.pki ca NAME COMMON_NAME"
        " | cert NAME CA SUBJECT USAGE [SANS]"
    )
    try:
        match argv:
            case ["ca", name, common_name]:
                make_ca(Path.cwd(), name, common_name)
            case ["cert", name, ca, subject, usage_, *sans] if len(sans) <= 1:
                make_cert(Path.cwd(), name, ca, subject, usage_, *sans)
            case _:
                print(usage, file=sys.stderr)
                return 2
    except (PkiError, OSError) as e:
        print(f"pki: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
