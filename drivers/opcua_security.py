"""Securing an asyncua client as a device table says, and naming why a server refused.

The server's certificate is checked against the device's ``trust_dir`` (asyncua's
``CertificateValidator`` with ``TRUSTED_VALIDATION``: validity period, application URI,
key usage, and trust by the certificate itself or its issuer), never accepted blindly.
Refusals become ``Refused`` with a sentence that names the device and what to do.
"""

from __future__ import annotations

from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from drivers.opcua_config import (
    Basic256Sha256,
    CertificateIdentity,
    OpcuaConfig,
    UserName,
)


class Refused(Exception):
    """A connection the server (or our own trust list) refused, for a reason that a retry
    alone will not mend: a certificate, a password, a policy. The message names the device."""


_MODES = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}


async def secure(client: Client, config: OpcuaConfig) -> None:
    """Apply ``config.security`` and ``config.identity`` to ``client`` before it connects.

    Raises ``Refused`` when a file or a password cannot be read, or the server offers no
    endpoint with the policy and mode asked for (that asks the server for its endpoints).
    """
    name = config.name
    security = config.security
    if isinstance(security, Basic256Sha256):
        client.application_uri = security.application_uri
        store = TrustStore([security.trust_dir], [])
        try:
            await store.load()
        except (OSError, ValueError) as err:
            if "empty store" in str(err):
                raise Refused(
                    f"device {name}: the trust list {security.trust_dir} holds no certificate: "
                    "put the server's certificate (or its issuer's) there"
                ) from err
            raise Refused(f"device {name}: trust list {security.trust_dir}: {err}") from err
        options = (
            CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_SERVER
        )
        client.certificate_validator = CertificateValidator(options, store)
        try:
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256,
                str(security.certificate),
                str(security.private_key),
                mode=_MODES[security.mode],
            )
        except FileNotFoundError as err:
            raise Refused(f"device {name}: {err.filename}: no such file") from err
        except ua.UaStatusCodeError:
            raise
        except ua.UaError as err:
            refused = refusal(err, config)
            if refused is None:
                raise
            raise refused from err
    identity = config.identity
    if isinstance(identity, UserName):
        try:
            password = identity.password()
        except LookupError as err:
            raise Refused(f"device {name}: no password for {identity.username!r}: {err}") from err
        client.set_user(identity.username)
        client.set_password(password)
    elif isinstance(identity, CertificateIdentity):
        try:
            await client.load_client_certificate(str(identity.certificate))
            await client.load_private_key(Path(identity.private_key))
        except FileNotFoundError as err:
            raise Refused(f"device {name}: {err.filename}: no such file") from err


# What a refusing status code means to the engineer, and what to do.
_REFUSALS: dict[int, str] = {
    ua.StatusCodes.BadCertificateUntrusted: "the server's certificate is not trusted: "
    "put it (or its issuer's) in the trust list {trust}",
    ua.StatusCodes.BadCertificateTimeInvalid: "a certificate is outside its validity period "
    "(expired or not yet valid)",
    ua.StatusCodes.BadCertificateUriInvalid: "the server's certificate does not name the "
    "application URI the server announces",
    ua.StatusCodes.BadCertificateInvalid: "a certificate is invalid",
    ua.StatusCodes.BadCertificateRevoked: "a certificate is revoked",
    ua.StatusCodes.BadCertificateUseNotAllowed: "a certificate's key usage does not allow it",
    ua.StatusCodes.BadSecurityChecksFailed: "the server refused the gateway's certificate "
    "(is it in the server's trust list?)",
    ua.StatusCodes.BadSecurityPolicyRejected: "the server rejects the security policy",
    ua.StatusCodes.BadUserAccessDenied: "user name or password refused",
    ua.StatusCodes.BadIdentityTokenRejected: "the user identity was refused",
    ua.StatusCodes.BadIdentityTokenInvalid: "the user identity is not accepted by this server",
}


_IDENTITY_CODES = {
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenRejected,
    ua.StatusCodes.BadIdentityTokenInvalid,
}


def refusal(err: BaseException, config: OpcuaConfig) -> Refused | None:
    """``Refused`` for an error that is a refusal (certificate, password, policy), else None."""
    if isinstance(err, Refused):
        return err
    if isinstance(err, ua.UaError) and "No matching endpoints" in str(err):
        security = config.security
        mode = getattr(security, "mode", "None")
        return Refused(
            f"device {config.name}: the server at {config.endpoint} offers no endpoint with "
            f"policy {security.policy} and mode {mode}"
        )
    code = getattr(err, "code", None)
    if not isinstance(err, ua.UaStatusCodeError) or not isinstance(code, int):
        return None
    text = _REFUSALS.get(code & 0xFFFF0000)
    if text is None:
        return None
    if code & 0xFFFF0000 in _IDENTITY_CODES:
        identity = config.identity
        if isinstance(identity, CertificateIdentity):
            text = f"the user certificate {identity.certificate} was refused"
        elif not isinstance(identity, UserName):
            text = "anonymous sessions are refused: give a user name or a user certificate"
    trust = getattr(config.security, "trust_dir", "(none: policy None)")
    name = ua.StatusCode(ua.UInt32(code)).name
    return Refused(f"device {config.name}: {text.format(trust=trust)} ({name})")


def certificate_subject_uri(path: Path) -> str | None:
    """The application URI in a certificate's subjectAltName, for messages and checks."""
    from cryptography import x509

    data = path.read_bytes()
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.startswith(b"-----")
        else x509.load_der_x509_certificate(data)
    )
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


__all__ = ["Refused", "certificate_subject_uri", "refusal", "secure"]
