#!/usr/bin/env python3
"""Regenerate the as4gate test PKI into the directory holding this script.

Usage: python3 test-pki/generate.py

The layout is fixed (see README.md next to this file); only the key material
and serial numbers change between runs.  Needs Python 3.11+ and the
`cryptography` package (tested with 48).  Prints file names and certificate
fingerprints only, never key material.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent
PARTIES = ("blue_gw", "red_gw", "mallory")

CA_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CA_NOT_AFTER = dt.datetime(2046, 1, 1, tzinfo=dt.timezone.utc)
LEAF_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
LEAF_NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.timezone.utc)
EXPIRED_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
EXPIRED_NOT_AFTER = dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)

_used_serials: set[int] = set()


def new_serial() -> int:
    """A positive, 63-bit, never-repeated (within this run) serial number."""
    while True:
        serial = secrets.randbits(63)
        if serial > 0 and serial not in _used_serials:
            _used_serials.add(serial)
            return serial


def write_file(path: Path, data: bytes, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    # Test keys are committed on purpose, so they stay readable; this is not a production PKI.
    os.chmod(path, 0o644)
    print(f"wrote {path.relative_to(ROOT.parent)}" + (" (private key)" if secret else ""))


def write_key(path: Path, key) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_file(path, pem, secret=True)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    write_file(path, cert.public_bytes(serialization.Encoding.PEM))
    fp = cert.fingerprint(hashes.SHA256()).hex(":")
    print(f"  subject={cert.subject.rfc4514_string()} serial={cert.serial_number} sha256={fp}")


def ca_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "as4gate test"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
        ]
    )


def make_ca(cn: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = ca_name(cn)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(new_serial())
        .not_valid_before(CA_NOT_BEFORE)
        .not_valid_after(CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def key_usage(
    *,
    signing: bool,
    non_repudiation: bool | None = None,
    key_encipherment: bool = False,
    key_agreement: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing if non_repudiation is None else non_repudiation,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_leaf(
    party: str,
    public_key,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    usage: x509.KeyUsage,
    not_before: dt.datetime = LEAF_NOT_BEFORE,
    not_after: dt.datetime = LEAF_NOT_AFTER,
    tls: bool = False,
) -> x509.Certificate:
    issuer_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(ca_name(party))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
    )
    if tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        ).add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256())


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def pkipath(certs: list[x509.Certificate]) -> bytes:
    """X509PKIPathv1: DER SEQUENCE OF Certificate, ordered from the trust anchor to the leaf."""
    body = b"".join(c.public_bytes(serialization.Encoding.DER) for c in certs)
    return b"\x30" + der_length(len(body)) + body


def make_party(party: str, ca_key, ca_cert, other_key, other_cert) -> None:
    out = ROOT / party
    rsa_usage = key_usage(signing=True, key_encipherment=True)
    sign_usage = key_usage(signing=True)

    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_cert = make_leaf(party, k.public_key(), ca_key, ca_cert, rsa_usage)
    write_key(out / "rsa.key", k)
    write_cert(out / "rsa.crt", rsa_cert)
    if party == "blue_gw":
        write_file(out / "rsa.pkipath", pkipath([ca_cert, rsa_cert]))

    k = ec.generate_private_key(ec.SECP256R1())
    write_key(out / "ecdsa.key", k)
    write_cert(out / "ecdsa.crt", make_leaf(party, k.public_key(), ca_key, ca_cert, sign_usage))

    k = ed25519.Ed25519PrivateKey.generate()
    write_key(out / "ed25519.key", k)
    write_cert(out / "ed25519.crt", make_leaf(party, k.public_key(), ca_key, ca_cert, sign_usage))

    k = x25519.X25519PrivateKey.generate()
    write_key(out / "x25519.key", k)
    write_cert(
        out / "x25519.crt",
        make_leaf(party, k.public_key(), ca_key, ca_cert, key_usage(signing=False, key_agreement=True)),
    )

    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(out / "rsa-expired.key", k)
    write_cert(
        out / "rsa-expired.crt",
        make_leaf(
            party,
            k.public_key(),
            ca_key,
            ca_cert,
            rsa_usage,
            not_before=EXPIRED_NOT_BEFORE,
            not_after=EXPIRED_NOT_AFTER,
        ),
    )

    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(out / "rsa-other-ca.key", k)
    write_cert(out / "rsa-other-ca.crt", make_leaf(party, k.public_key(), other_key, other_cert, rsa_usage))

    k = ec.generate_private_key(ec.SECP256R1())
    write_key(out / "tls.key", k)
    write_cert(
        out / "tls.crt",
        make_leaf(
            party,
            k.public_key(),
            ca_key,
            ca_cert,
            key_usage(signing=True, non_repudiation=False),
            tls=True,
        ),
    )


def main() -> int:
    ca_key, ca_cert = make_ca("as4gate Test Root CA")
    write_key(ROOT / "ca" / "ca.key", ca_key)
    write_cert(ROOT / "ca" / "ca.crt", ca_cert)

    other_key, other_cert = make_ca("as4gate Other Test CA")
    write_key(ROOT / "other-ca" / "ca.key", other_key)
    write_cert(ROOT / "other-ca" / "ca.crt", other_cert)

    for party in PARTIES:
        make_party(party, ca_key, ca_cert, other_key, other_cert)
    return 0


if __name__ == "__main__":
    sys.exit(main())
