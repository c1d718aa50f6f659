"""`tracker account create|reset-password`: accounts from the command line.

The password is read from standard input (``--password-stdin``: the first line), never
from the command line, where other users of the machine could see it in `ps`.
"""

from __future__ import annotations

import argparse
import sys

from geo_api.errors import DomainError
from geo_api.vocabulary import ROLES


def _password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_account(args: argparse.Namespace) -> int:
    from geo_api import auth, db
    from geo_api.localdb import ensure_database_available

    url = ensure_database_available(lambda message: print(message, flush=True))
    engine = db.get_engine(url)
    try:
        with engine.begin() as conn:
            if args.action == "create":
                account = auth.create_account(
                    conn, username=args.username, role=args.role, password=_password(args),
                    display_name=args.display_name, post=args.post_code, donor=args.donor_code,
                    actor="cli")
                scope = (f", post {account.post_id}" if account.post_id else "") + \
                        (f", donor {account.donor_id}" if account.donor_id else "")
                print(f"Account {account.username} ({account.role}{scope}) created"
                      + ("" if args.password_stdin else "; it cannot log in until a password is set"
                         " (tracker account reset-password)") + ".")
            else:
                password = _password(args)
                if password is None:
                    print("tracker: give the new password on standard input with --password-stdin",
                          file=sys.stderr)
                    return 2
                auth.set_password(conn, args.username, password, actor="cli")
                print(f"Password of {args.username} replaced; its sessions were ended.")
    except DomainError as exc:
        print(f"tracker: {exc.message}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("account", help="create accounts and reset passwords")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create an account")
    c.add_argument("--username", required=True)
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--display-name")
    c.add_argument("--post-code", help="the post of a post account (code or id)")
    c.add_argument("--donor-code", help="the donor of a donor account (code or id)")
    c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    c.set_defaults(func=cmd_account)
    r = actions.add_parser("reset-password", help="set a new password (ends the account's sessions)")
    r.add_argument("--username", required=True)
    r.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    r.set_defaults(func=cmd_account)
