"""``trellis users add|remove NAME``: the file of salted password hashes the app signs users in with
(``TRELLIS_USERS_FILE``)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

DEFAULT_USERS_FILE = ".trellis/users"


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("error: no terminal to ask for the password: pipe it in with --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        print("error: the two passwords differ; nothing written", file=sys.stderr)
        return None
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from trellis.app.auth.users_file import UsersFileError, remove_user, write_user

    try:
        if args.action == "remove":
            left = remove_user(args.file, args.name)
            print(
                f"removed {args.name} from {args.file}"
                + ("" if left else ": it names no user now, so the app lets nobody in")
            )
            return 0
        password = _password(args)
        if password is None:
            return 2
        new = write_user(args.file, args.name, password)
    except UsersFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = os.path.abspath(args.file)
    print(f"{'added' if new else 'updated'} {args.name} in {where} (serve with TRELLIS_USERS_FILE={where})")
    return 0


def add_commands(sub) -> None:
    users = sub.add_parser("users", help="add or remove a user of the app's users file (salted argon2 hashes)")
    users.add_argument("action", choices=["add", "remove"])
    users.add_argument("name")
    users.add_argument("--file", default=os.environ.get("TRELLIS_USERS_FILE") or DEFAULT_USERS_FILE)
    users.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.set_defaults(func=cmd_users)
