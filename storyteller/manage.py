"""`storyteller campaigns`, `storyteller delete NAME`, `storyteller export` and
`storyteller worlds [import FILE]`: managing campaigns and worlds from the command line."""

from __future__ import annotations

import argparse
import sys

from storyteller.config import Settings
from storyteller.engine.session import load_campaign
from storyteller.storage.export import export_campaign
from storyteller.storage.interop.importer import import_world
from storyteller.storage.listing import CampaignInfo, delete_campaign, list_campaigns
from storyteller.storage.names import campaign_path
from storyteller.storage.worlds import list_worlds, shipped_world_names
from storyteller.text import strip_control


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def campaigns_table(found: list[CampaignInfo]) -> str:
    rows = [("NAME", "WORLD", "TURNS", "LAST PLAYED", "SIZE")]
    for info in found:
        played = info.last_played.replace("T", " ")[:16] or "?"
        turns = str(info.turns) if not info.problem else "?"
        rows.append((info.name, info.world, turns, played, human_size(info.size_bytes)))
    problems = [f"! {info.name}: {info.problem}" for info in found if info.problem]
    problems += [f"* {info.name}: open in another storyteller ({info.open_elsewhere})"
                 for info in found if info.open_elsewhere]
    return "\n".join([table(rows), *(strip_control(line) for line in problems)])


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows in columns, the first one the header; text from files is shown inert."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(strip_control("  ".join(
        cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        for row in rows)


def show_campaigns(settings: Settings, args: argparse.Namespace) -> int:
    found = list_campaigns(settings.saves_dir)
    if not found:
        print(f"No campaigns in {settings.saves_dir} yet; `storyteller --campaign NAME` "
              "starts one.")
        return 0
    print(campaigns_table(found))
    return 0


def delete(settings: Settings, args: argparse.Namespace) -> int:
    path = campaign_path(settings.saves_dir, args.name)  # refuses names that escape saves/
    info = next((c for c in list_campaigns(settings.saves_dir) if c.name == path.name), None)
    if info is not None and not args.yes:
        question = (f"Delete campaign {info.name!r} ({info.world}, {info.turns} turns, "
                    f"{human_size(info.size_bytes)}) for good? Type 'yes' to confirm: ")
        try:
            answer = input(question)
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Not deleted.", file=sys.stderr)
            return 1
    delete_campaign(settings.saves_dir, args.name)
    print(f"Deleted {path}.")
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    campaign, world = load_campaign(settings, args.campaign)
    print(export_campaign(campaign, world, args.format))
    return 0


def show_worlds(settings: Settings, args: argparse.Namespace) -> int:
    rows = [(world.name, world.title, "imported" if world.imported else "shipped")
            for world in list_worlds(settings)]
    print(table([("NAME", "TITLE", "FROM"), *rows]))
    return 0


def import_world_file(settings: Settings, args: argparse.Namespace) -> int:
    path = import_world(args.file, settings.user_worlds_dir, args.name, args.force,
                        reserved=shipped_world_names(settings))
    print(f"Imported {args.file} as the world {path.stem!r} ({path}); start a campaign in "
          f"it with `storyteller --world {path.stem} --campaign NAME`, or on the title screen.")
    return 0


COMMANDS = {"campaigns": show_campaigns, "delete": delete, "export": export,
            "worlds": show_worlds, "worlds import": import_world_file}
