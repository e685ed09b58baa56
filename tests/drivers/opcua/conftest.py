"""Fire-panel servers for the OPC UA driver tests.

An asyncua server takes about 1.1 s to start, so each panel serves every test of the
session from a thread of its own, on its own event loop and a free loopback port; each test
runs its client with ``asyncio.run`` as the other driver tests do. A panel is put back to
normal after each test that uses it, and stopped at the end even when tests failed.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.cli.opcua_cert import make_certificate
from simulators.fire_panel import APPLICATION_URI, FirePanelServer, FirePanelThread, Security
from simulators.net import free_port
from simulators.scenario import load_scenario
from simulators.warehouse import Warehouse

ZONES = ("Zone1", "Zone2", "Zone3", "Zone4")
USER, PASSWORD = "operator", "s3cret-for-tests"


class PanelHost(FirePanelThread):
    """The panel in its thread, and a way back to normal between tests."""

    def normal(self) -> None:
        async def reset(panel: FirePanelServer) -> None:
            for zone in (*ZONES, "Zone5"):
                await panel.force(zone, None)
            await panel.set_trouble(False)
            await panel.reset()

        self.call(reset)


@dataclass(frozen=True)
class Pki:
    gateway_cert: Path
    gateway_key: Path
    user_cert: Path  # a person's (or a service's) certificate as the session's identity
    user_key: Path
    server_cert: Path
    server_key: Path
    expired_cert: Path
    trust: Path  # holds the server's certificate
    other_trust: Path  # holds another certificate, not the server's


def _server_certificate(directory: Path, name: str, expired: bool) -> tuple[Path, Path]:
    key = cert_gen.generate_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fire panel {name}")])
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
        if expired
        else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(APPLICATION_URI), x509.DNSName("127.0.0.1")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("opcua-pki")
    gateway_cert, gateway_key = root / "gateway.der", root / "gateway.pem"
    make_certificate(gateway_cert, gateway_key, "urn:cellsafe:gateway", "localhost")
    user_cert, user_key = root / "user.der", root / "user.pem"
    make_certificate(user_cert, user_key, "urn:cellsafe:operator", "localhost")
    server_cert, server_key = _server_certificate(root, "server", expired=False)
    expired_cert, _ = _server_certificate(root, "expired", expired=True)
    trust, other = root / "trusted", root / "other"
    trust.mkdir()
    other.mkdir()
    (other / "gateway.der").write_bytes(gateway_cert.read_bytes())
    (trust / "server.der").write_bytes(server_cert.read_bytes())
    (trust / "expired.der").write_bytes(expired_cert.read_bytes())
    return Pki(
        gateway_cert,
        gateway_key,
        user_cert,
        user_key,
        server_cert,
        server_key,
        expired_cert,
        trust,
        other,
    )


@pytest.fixture(scope="session")
def warehouse() -> Warehouse:
    """The warehouse physics the session panel's Zone5 watches (its cell store); tests set
    the zone's smoke by hand rather than play the scenario."""
    return Warehouse(load_scenario("thermal_runaway"))


@pytest.fixture(scope="session")
def _panel_host(warehouse: Warehouse) -> Iterator[PanelHost]:
    zones: dict[str, str | None] = {**dict.fromkeys(ZONES), "Zone5": "cell-store"}
    host = PanelHost(FirePanelServer(zones, port=free_port(), warehouse=warehouse))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def panel(_panel_host: PanelHost) -> Iterator[PanelHost]:
    """The plain (security None) panel, back to normal after the test."""
    try:
        yield _panel_host
    finally:
        _panel_host.normal()


def _secure(pki: Pki, expired: bool) -> FirePanelServer:
    security = Security(
        policies=[ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
        certificate=pki.expired_cert if expired else pki.server_cert,
        private_key=pki.expired_cert.with_suffix(".pem") if expired else pki.server_key,
        users={USER: PASSWORD},
        user_certificates=[pki.user_cert],
    )
    return FirePanelServer({"Zone1": None}, port=free_port(), security=security)


@pytest.fixture(scope="session")
def secure_panel(pki: Pki) -> Iterator[PanelHost]:
    """Basic256Sha256 SignAndEncrypt only, user name and password only."""
    host = PanelHost(_secure(pki, expired=False))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="session")
def expired_panel(pki: Pki) -> Iterator[PanelHost]:
    """As ``secure_panel``, with a certificate that expired yesterday."""
    host = PanelHost(_secure(pki, expired=True))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def own_panel() -> Iterator[PanelHost]:
    """A panel of the test's own, for tests that stop and start it."""
    host = PanelHost(FirePanelServer(dict.fromkeys(ZONES), port=free_port()))
    try:
        yield host
    finally:
        host.close()
