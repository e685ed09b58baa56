"""Secrets out of log lines: a logging filter that masks every known secret.

Apprise and urllib3 log URLs (a DingTalk or WeCom token sits in the URL's path or query,
an SMTP password in its user part); the filter sits on their loggers and on ours and
replaces each secret, and each secret part of a secret URL, with ``***``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

LOGGER = "gateway.notify"
# A logger's filter sees only the records logged on that logger itself, not those of its
# children: each logger of urllib3 that writes a URL is named.
MASKED_LOGGERS = (
    LOGGER,
    "apprise",
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
)
MASK = "***"
_MIN_PART = 6  # shorter URL parts (a port, 'to', 'on') are not secrets


def fragments(secrets: Iterable[str]) -> list[str]:
    """The secrets and the parts of secret URLs that could show on their own: password,
    path segments and query values (tokens), longest first."""
    found: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        found.add(secret)
        if "://" not in secret:
            continue
        url = urlsplit(secret)
        parts = [url.password or "", *url.path.split("/")]
        parts += [value for _, value in parse_qsl(url.query)]
        for part in parts:
            if len(part) >= _MIN_PART:
                found.update({part, unquote(part)})
    return sorted(found, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class MaskSecrets(logging.Filter):
    """Replaces the secrets in a record's formatted message; the record goes on."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = fragments(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = mask(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = mask(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info, record.exc_text = None, text
        return True


def install(secrets: Iterable[str]) -> MaskSecrets:
    """Put one filter on every logger that may write a secret; ``remove`` takes it off."""
    masking = MaskSecrets(secrets)
    for name in MASKED_LOGGERS:
        logging.getLogger(name).addFilter(masking)
    return masking


def remove(masking: MaskSecrets) -> None:
    for name in MASKED_LOGGERS:
        logging.getLogger(name).removeFilter(masking)
