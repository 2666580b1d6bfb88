"""The ``switchboard group`` command: create groups and manage members.

Groups are named by the id that ``group create`` and ``group list`` print,
users by account name.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

from switchboard.cli.commands import UsageError, open_client
from switchboard.cli.output import group_json, print_json
from switchboard.cli.terminal import escape
from switchboard.client import ROLES, Group

__all__ = ["add_group_parser", "group_id", "parse_names"]

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_group_parser(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: argparse.ArgumentParser,
) -> None:
    """Add ``group`` and its actions; ``client`` has the common options."""
    group = subcommands.add_parser(
        "group",
        help="create groups and manage their members",
        description="Create group chats and manage their members. Send to a"
        " group with 'switchboard send --group ID TEXT'.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[client], help=help_text)
        parser.set_defaults(handler=handler)
        return parser

    create = action("create", create_group, "create a group owned by you")
    create.add_argument("name", metavar="NAME", help="1 to 100 characters")
    create.add_argument(
        "--members",
        type=parse_names,
        default=[],
        metavar="NAME,NAME",
        help="account names to add as members, separated by commas",
    )
    _add_json(create, "print the group as JSON")

    listing = action("list", list_groups, "list your groups")
    _add_json(listing, "print one JSON object per group")

    members = action("members", list_members, "list a group's members")
    _add_group_id(members)
    _add_json(members, "print one JSON object per member")

    add = action("add", add_members, "add members (admins and the owner)")
    _add_group_id(add)
    add.add_argument("names", nargs="+", metavar="NAME", help="account names")
    add.add_argument(
        "--role",
        choices=ROLES,
        default="member",
        help="role of the new members; only the owner adds admins (default: member)",
    )
    _add_json(add, "print the group as JSON")

    remove = action("remove", remove_member, "remove a member")
    _add_group_id(remove)
    remove.add_argument("name", metavar="NAME", help="account name")

    leave = action("leave", leave_group, "leave a group")
    _add_group_id(leave)

    rename = action("rename", rename_group, "rename a group (admins and the owner)")
    _add_group_id(rename)
    rename.add_argument("name", metavar="NAME", help="1 to 100 characters")

    role = action("role", set_role, "make a member an admin or a member (owner)")
    _add_group_id(role)
    role.add_argument("name", metavar="NAME", help="account name")
    role.add_argument("role", choices=ROLES, metavar="ROLE", help="member or admin")


def parse_names(text: str) -> list[str]:
    """Split ``a,b, c`` into account names; raise ArgumentTypeError for an
    empty name."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"invalid list of names {text!r}: separate names with single commas"
        )
    return names


def _add_group_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "group_id", type=group_id, metavar="GROUP", help="group id, from 'group list'"
    )


def _add_json(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--json", action="store_true", help=help_text)


def group_id(text: str) -> int:
    """Parse a group id argument; raise ArgumentTypeError unless it is one."""
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(
            f"invalid group id {text!r}: expected the number that 'group list' prints"
        )
    return int(text)


def _print_group(group: Group, args: argparse.Namespace, verb: str) -> None:
    if args.json:
        print_json(group_json(group))
        return
    members = ", ".join(
        member.name if member.role == "member" else f"{member.name} ({member.role})"
        for member in group.members
    )
    print(escape(f"{verb} group {group.name} (id {group.id}): {members}"))


async def create_group(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        group = await client.create_group(args.name, args.members)
    _print_group(group, args, "created")
    return 0


async def list_groups(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        groups = await client.groups()
    for group in groups:
        if args.json:
            print_json(group_json(group))
        else:
            print(escape(f"{group.id} {group.name}"))
    return 0


async def list_members(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        group = await client.group(args.group_id)
    for member in group.members:
        if args.json:
            print_json({"group": group.id, **dataclasses.asdict(member)})
        else:
            print(escape(f"{member.name} {member.role}"))
    return 0


async def add_members(args: argparse.Namespace) -> int:
    if len(set(args.names)) != len(args.names):
        raise UsageError("a name is given twice; give each name once")
    async with open_client(args) as client:
        group = await client.add_group_members(
            args.group_id, args.names, role=args.role
        )
    _print_group(group, args, "added to")
    return 0


async def remove_member(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        await client.remove_group_member(args.group_id, args.name)
    print(escape(f"removed {args.name} from group {args.group_id}"))
    return 0


async def leave_group(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        await client.leave_group(args.group_id)
    print(f"left group {args.group_id}")
    return 0


async def rename_group(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        group = await client.rename_group(args.group_id, args.name)
    print(escape(f"renamed group {group.id} to {group.name}"))
    return 0


async def set_role(args: argparse.Namespace) -> int:
    async with open_client(args) as client:
        await client.set_group_role(args.group_id, args.name, args.role)
    print(escape(f"{args.name} is now a group {args.role} of group {args.group_id}"))
    return 0
