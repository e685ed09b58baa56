"""``cellsafe opcua-cert``: the gateway's OPC UA application certificate and key.

OPC UA identifies an application by its certificate, whose subjectAltName must carry the
application URI the client announces (OPC 10000-4, 6.1; OPC 10000-6, 6.2.2) and should
name the host. The certificate is self-signed, RSA 2048 with SHA-256 as Basic256Sha256
requires, with the client-authentication extended key usage; copy it into each server's
trust list. The key file is written 0600 and never over an existing one without
``--force``.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

DEFAULT_URI = "urn:cellsafe:gateway"


def add_parser(commands: Any) -> None:
    cert = commands.add_parser(
        "opcua-cert", help="create the gateway's OPC UA application certificate and key"
    )
    cert.add_argument("--cert", type=Path, required=True, help="certificate file to write (DER)")
    cert.add_argument("--key", type=Path, required=True, help="private key file to write (PEM)")
    cert.add_argument(
        "--uri", default=DEFAULT_URI, help=f"application URI (default: {DEFAULT_URI})"
    )
    cert.add_argument("--host", default=socket.gethostname(), help="host name in the certificate")
    cert.add_argument("--days", type=int, default=730, help="validity in days (default: 730)")
    cert.add_argument("--force", action="store_true", help="replace existing files")


def make_certificate(cert: Path, key: Path, uri: str, host: str, days: int = 730) -> None:
    """Write a self-signed application certificate (DER) and its RSA key (PEM, 0600)."""
    private_key = cert_gen.generate_private_key()
    certificate = cert_gen.generate_self_signed_app_certificate(
        private_key,
        f"CellSafe Gateway@{host}",
        {"organizationName": "CellSafe"},
        [x509.UniformResourceIdentifier(uri), x509.DNSName(host)],
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        days=days,
    )
    key.parent.mkdir(parents=True, exist_ok=True)
    cert.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(cert_gen.dump_private_key_as_pem(private_key))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.DER))


def run(args: argparse.Namespace) -> int:
    existing = [p for p in (args.cert, args.key) if p.exists()]
    if existing and not args.force:
        print(f"opcua-cert: {existing[0]} exists; --force replaces it")
        return 1
    if args.days < 1:
        print("opcua-cert: --days must be at least 1")
        return 1
    make_certificate(args.cert, args.key, args.uri, args.host, args.days)
    print(
        f"certificate {args.cert} (application URI {args.uri}, host {args.host}, {args.days} days)"
    )
    print(f"key {args.key} (mode 0600); put the certificate in each server's trust list")
    return 0
