"""Operator accounts: names, roles and argon2id password hashes, one line per account.

The users file (``[console] users_file``) holds lines ``name:role:lang:hash``, like
``/etc/shadow``: the hash is argon2id in its PHC string form (argon2-cffi's defaults, RFC
9106's second recommended profile), ``lang`` is ``en``, ``zh`` or empty (the browser's
choice). ``#`` starts a comment. The file holds no plain password; it is written with mode
0600 by ``cellsafe console-user``.

Roles (docs/console.md): a ``viewer`` sees everything and changes nothing; an ``operator``
also acknowledges, resets, shelves and unshelves alarms and aborts or resumes a
pre-discharge countdown; an ``engineer`` also overrides relays, resets latched matrix rows
and takes alarms out of service and back.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Role = Literal["viewer", "operator", "engineer"]
ROLES: tuple[Role, ...] = get_args(Role)
LANGUAGES = ("en", "zh")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

OPERATOR_COMMANDS = frozenset({"ack", "reset", "shelve", "unshelve", "abort", "resume"})
ENGINEER_COMMANDS = OPERATOR_COMMANDS | {
    "override",
    "end_override",
    "reset_row",
    "disable",
    "enable",
}
ALLOWED: dict[Role, frozenset[str]] = {
    "viewer": frozenset(),
    "operator": OPERATOR_COMMANDS,
    "engineer": ENGINEER_COMMANDS,
}

_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name costs as long as a
# wrong password and timing does not tell which names exist.
_DUMMY = _hasher.hash("not a password of anyone")


class UsersFileError(ValueError):
    """A users file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    lang: str  # "en", "zh" or "" (the browser's choice)
    hash: str

    def may(self, command: str) -> bool:
        """Whether this user's role allows the CommandRouter command ``command``."""
        return command in ALLOWED[self.role]


def parse_users(text: str, origin: str = "users file") -> dict[str, User]:
    """``{name: User}`` from the file's text; raises UsersFileError naming ``origin:line``."""
    users: dict[str, User] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 3)
        where = f"{origin}:{number}"
        if len(parts) != 4:
            raise UsersFileError(f"{where}: expected name:role:lang:hash")
        name, role, lang, hashed = parts
        if not NAME_PATTERN.match(name):
            raise UsersFileError(f"{where}: name {name!r}: lower-case letters, digits, . _ -")
        if role not in ROLES:
            raise UsersFileError(f"{where}: role {role!r}; one of {', '.join(ROLES)}")
        if lang and lang not in LANGUAGES:
            raise UsersFileError(f"{where}: lang {lang!r}; one of {', '.join(LANGUAGES)} or empty")
        if not hashed.startswith("$argon2"):
            raise UsersFileError(f"{where}: the hash is not an argon2 hash")
        if name in users:
            raise UsersFileError(f"{where}: {name!r} appears twice")
        users[name] = User(name, role, lang, hashed)
    return users


def format_users(users: dict[str, User]) -> str:
    lines = ["# CellSafe console accounts: name:role:lang:argon2id hash (cellsafe console-user)"]
    lines += [f"{u.name}:{u.role}:{u.lang}:{u.hash}" for u in sorted(users.values(), key=_name)]
    return "\n".join(lines) + "\n"


def _name(user: User) -> str:
    return user.name


def hash_password(password: str) -> str:
    """An argon2id hash in PHC string form; raises ValueError for a password under 8 chars."""
    if len(password) < 8:
        raise ValueError("a password has at least 8 characters")
    return _hasher.hash(password)


class Users:
    """The accounts of a users file, read at start-up."""

    def __init__(self, users: dict[str, User]) -> None:
        self._users = users

    @classmethod
    def load(cls, path: Path) -> Users:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise UsersFileError(f"{path}: {err.strerror or err}") from err
        return cls(parse_users(text, str(path)))

    def __len__(self) -> int:
        return len(self._users)

    def get(self, name: str) -> User | None:
        return self._users.get(name)

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (an unknown name takes as long)."""
        user = self._users.get(name)
        try:
            _hasher.verify(user.hash if user else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user


def write_users(path: Path, users: dict[str, User]) -> None:
    """Replace ``path`` atomically with mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(format_users(users))
    tmp.replace(path)
