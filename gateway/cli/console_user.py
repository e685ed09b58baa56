"""``cellsafe console-user``: add, change or remove an operator account of the console.

The password is read from the terminal (twice) or, with ``--password-stdin``, from the
first line of standard input; only its argon2id hash is written, to the users file named
by ``--file`` (``[console] users_file``), which is replaced atomically with mode 0600.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from gateway.console.auth import (
    LANGUAGES,
    NAME_PATTERN,
    ROLES,
    User,
    UsersFileError,
    hash_password,
    parse_users,
    write_users,
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("console-user", help="add, change or remove a console account")
    parser.add_argument("--file", type=Path, required=True, help="the users file (created)")
    parser.add_argument("name", help="account name: lower-case letters, digits, . _ -")
    parser.add_argument(
        "--role", choices=ROLES, default=None, help="default: the account's own, else viewer"
    )
    parser.add_argument(
        "--lang",
        choices=("", *LANGUAGES),
        default=None,
        help="default: the account's own, else the browser's",
    )
    parser.add_argument("--delete", action="store_true", help="remove the account")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def run(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8") if args.file.exists() else ""
        users = parse_users(text, str(args.file))
    except (OSError, UsersFileError) as err:
        print(f"cellsafe console-user: {err}", file=sys.stderr)
        return 2
    if not NAME_PATTERN.match(args.name):
        print(f"cellsafe console-user: name {args.name!r}: lower-case letters, digits, . _ -")
        return 2
    if args.delete:
        if users.pop(args.name, None) is None:
            print(f"cellsafe console-user: no account {args.name!r}", file=sys.stderr)
            return 1
    else:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                print("cellsafe console-user: the passwords differ", file=sys.stderr)
                return 2
        try:
            hashed = hash_password(password)
        except ValueError as err:
            print(f"cellsafe console-user: {err}", file=sys.stderr)
            return 2
        # A new password alone keeps the account's role and language.
        old = users.get(args.name)
        role = args.role or (old.role if old else "viewer")
        lang = args.lang if args.lang is not None else (old.lang if old else "")
        users[args.name] = User(args.name, role, lang, hashed)
    try:
        write_users(args.file, users)
    except OSError as err:
        print(f"cellsafe console-user: {args.file}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(f"{'removed' if args.delete else 'saved'} {args.name} in {args.file}")
    return 0
