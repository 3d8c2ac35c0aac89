"""Command line: `storyteller` opens the game in the terminal; `storyteller run` plays a
script headless. Heavy libraries (llama_cpp, textual) are imported only when needed."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from storyteller import __version__
from storyteller.config import BACKENDS, Settings
from storyteller.errors import StorytellerError
from storyteller.generation import Sampling
from storyteller.storage.export import EXPORT_FORMATS

# The game's own flags: (flag, add_argument options). A flag left out keeps the setting
# from the environment (STORYTELLER_*) or its default.
GAME_FLAGS: tuple[tuple[str, dict], ...] = (
    ("--world", {"help": "world for a new campaign, shipped or imported "
                         "(`storyteller worlds` lists them)"}),
    ("--model", {"help": "a preset (`storyteller models` lists them), a .gguf path, a "
                         "Hugging Face model folder, or a model name on a server"}),
    ("--backend", {"choices": BACKENDS,
                   "help": "when the model alone does not say (default: from --model); "
                           "'scripted' replays canned replies (--model FILE: its replies)"}),
    ("--base-url", {"help": "OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 "
                            "(implies --backend openai)"}),
    ("--api-key", {"help": "the server's API key (or STORYTELLER_API_KEY); never saved"}),
    ("--n-gpu-layers", {"type": int, "help": "llama.cpp: layers on the GPU (-1: all)"}),
    ("--flash-attn", {"action": "store_true", "default": None,
                      "help": "llama.cpp: flash attention"}),
    ("--lora", {"type": Path, "help": "llama.cpp: a LoRA adapter (GGUF) to apply"}),
    ("--device", {"help": "transformers: auto (default), cpu, cuda, mps"}),
    ("--dtype", {"help": "transformers: auto (default), float32, bfloat16, float16"}),
    ("--seed", {"type": int, "help": "sampling seed, for repeatable stories"}),
)
LATER_FLAGS: tuple[tuple[str, dict], ...] = (
    ("--n-ctx", {"type": int, "help": "context size in tokens (default: the model's)"}),
    ("--threads", {"type": int, "dest": "n_threads", "help": "CPU threads for the model"}),
    ("--log-level", {"type": int, "dest": "content_log_level", "metavar": "0-3",
                     "help": "content log in saves/<campaign>/logs/: 0 off, 1 per-turn "
                             "summary, 2 key stages, 3 full prompts and outputs (kept with "
                             "the campaign)"}),
)


def _add_game_flags(parser: argparse.ArgumentParser, campaign_required: bool) -> None:
    parser.add_argument("--campaign", required=campaign_required,
                        help="campaign to start or resume (a folder in the saves directory); "
                             "without it the game opens on the title screen")
    for flag, options in GAME_FLAGS:
        parser.add_argument(flag, **options)
    _add_sampling_flags(parser)
    for flag, options in LATER_FLAGS:
        parser.add_argument(flag, **options)
    _add_saves_flag(parser)
    _add_worlds_flag(parser)
    _add_memory_flags(parser)
    parser.add_argument("--extractor-model",
                        help="model that notes facts after each turn and writes summaries: "
                             "like --model; 'off' stops note-taking; 'auto' (default): the "
                             "narrator's model, taking notes only if it has 1B parameters or "
                             "more")


def _add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    """--temperature, --top-p, --top-k, --repeat-penalty, --max-tokens: from the one
    definition of the sampling fields (kept with the campaign once given)."""
    for name, info in Sampling.model_fields.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=info.annotation,
                            help=f"{info.description.lower()}; default {info.default}")


def _add_saves_flag(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's unset flag must not overwrite one given before it
    parser.add_argument("--saves-dir", type=Path, default=argparse.SUPPRESS,
                        help="where campaigns live (default ./saves, or $STORYTELLER_SAVES_DIR)")


def _add_worlds_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worlds-dir", type=Path, default=argparse.SUPPRESS,
                        help="where imported worlds live (default: worlds/ beside the saves "
                             "directory, or $STORYTELLER_WORLDS_DIR)")


def _add_memory_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-url",
                        help="Chroma server for the story memory, http://HOST:PORT "
                             "(default: an index inside the campaign folder)")


def _add_worlds_commands(commands: argparse._SubParsersAction) -> None:
    worlds = commands.add_parser(
        "worlds", help="list the worlds a new campaign can start in (shipped and imported); "
                       "`worlds import FILE` adds one")
    _add_saves_flag(worlds)
    _add_worlds_flag(worlds)
    actions = worlds.add_subparsers(dest="worlds_command", metavar="ACTION")
    imported = actions.add_parser(
        "import", help="make a world of a SillyTavern World Info file or character card "
                       "(JSON or PNG) or a NovelAI lorebook, in the worlds folder")
    imported.add_argument("file", type=Path, help="the lorebook or card to import")
    imported.add_argument("--name", help="the world's name (default: from its title)")
    imported.add_argument("--force", action="store_true",
                          help="replace an imported world of the same name")
    _add_saves_flag(imported)
    _add_worlds_flag(imported)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyteller",
        description="A text adventure in your terminal, narrated by a local language model. "
                    "Without a command, the game opens in the terminal.",
    )
    parser.add_argument("--version", action="version", version=f"storyteller {__version__}")
    _add_game_flags(parser, campaign_required=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="play a script of actions headless, printing the story")
    _add_game_flags(run, campaign_required=True)
    run.add_argument("--script", type=Path, required=True,
                     help="file with one player action or /command per line")
    run.add_argument("--trace", type=Path, help="append one JSON line per turn to this file")
    run.add_argument("--think-time", type=float, default=0.0, metavar="SECONDS",
                     help="after each line, wait this long as a reading player would "
                          "(background work and the prefill go on meanwhile)")
    _add_worlds_commands(commands)
    _add_saves_flag(commands.add_parser(
        "campaigns", help="list the campaigns: name, world, turns, last played, size"))
    delete = commands.add_parser("delete", help="delete a campaign (asks first)")
    delete.add_argument("name", help="the campaign to delete")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_saves_flag(delete)
    export = commands.add_parser("export", help="write a campaign's story to its exports/ folder")
    export.add_argument("--campaign", required=True, help="the campaign to export")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="md",
                        help="md: a readable story; json: the story as data; "
                             "log: the content log; sillytavern: a SillyTavern chat (.jsonl)")
    _add_saves_flag(export)
    _add_memory_command(commands, "reindex", "rebuild a campaign's memory index from its "
                        "world, memories and transcript (no model needed)",
                        "the campaign to reindex")
    commands.add_parser("models", help="list the model presets: present or missing, size, RAM")
    _add_import_command(commands)
    _add_prompt_command(commands)
    return parser


def _add_memory_command(commands, name: str, summary: str,
                        campaign_help: str) -> argparse.ArgumentParser:
    """A command on one campaign and its memory index: --campaign, --saves-dir and the
    memory flags."""
    command = commands.add_parser(name, help=summary)
    command.add_argument("--campaign", required=True, help=campaign_help)
    _add_saves_flag(command)
    _add_memory_flags(command)
    return command


def _add_prompt_command(commands) -> None:
    prompt = _add_memory_command(
        commands, "prompt", "show the prompt the next turn would be told from, for TEXT or "
        "each line of --file, without playing (changes nothing on disk)",
        "the campaign to look into")
    prompt.add_argument("--n-ctx", type=int, help="context size in tokens for the budget "
                                                  "(default: the model's)")
    prompt.add_argument("--model", help="the model whose tokenizer and chat template count "
                                        "(like the game's --model; its weights are not needed)")
    prompt.add_argument("--json", action="store_true",
                        help="one JSON line per input: input, prompt, prompt_tokens, "
                             "evaluated_tokens, sections, retrieved")
    given = prompt.add_mutually_exclusive_group(required=True)
    given.add_argument("--file", type=Path, help="one input a line, each shown in turn")
    given.add_argument("text", nargs="?", help="the player's input")


def _add_import_command(commands) -> None:
    story = commands.add_parser(
        "import", help="a new campaign from a story told elsewhere: a JSONL of "
                       "{\"input\", \"output\"} turns, a SillyTavern chat (.jsonl) or a "
                       "storyteller JSON export (told by the content)")
    story.add_argument("--campaign", required=True, help="the new campaign's name")
    story.add_argument("--world", help="world the story goes on in, from prompts/worlds/ "
                                       "(default: the default world)")
    _add_saves_flag(story)
    _add_memory_flags(story)
    story.add_argument("file", type=Path, help="the story file")


def settings_from(args: argparse.Namespace) -> Settings:
    """Flags that were given override environment variables and defaults."""
    fields = ("world", "model", "seed", "n_ctx", "n_threads", "saves_dir", "worlds_dir",
              "content_log_level", "memory_url", "extractor_model", "backend", "base_url",
              "api_key", "n_gpu_layers", "flash_attn", "lora", "device", "dtype",
              *Sampling.model_fields)
    return Settings(**{name: getattr(args, name) for name in fields
                       if getattr(args, name, None) is not None})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Skipped extractions and similar are for the content log, not the player's terminal.
    logging.basicConfig(level=logging.ERROR, format="storyteller: %(message)s")
    try:
        settings = settings_from(args)
        if args.command == "run":
            from storyteller.headless import run_script

            return run_script(settings, args.campaign, args.script, args.trace,
                              args.think_time)
        if args.command == "reindex":
            from storyteller.memory.reindex import reindex_campaign

            return reindex_campaign(settings, args.campaign)
        if args.command == "import":
            from storyteller.engine.story_import import import_story

            print(import_story(settings, args.campaign, args.file))
            return 0
        if args.command == "prompt":
            from storyteller.engine.preview import preview_prompts
            from storyteller.headless import read_script

            inputs = read_script(args.file) if args.file else [args.text]
            return preview_prompts(settings, args.campaign, inputs, args.json)
        if args.command in ("campaigns", "delete", "export", "worlds"):
            from storyteller import manage

            command = args.command if args.command != "worlds" or not args.worlds_command \
                else f"worlds {args.worlds_command}"
            return manage.COMMANDS[command](settings, args)
        if args.command == "models":
            from storyteller.narrator.registry import describe_models

            print("\n".join(describe_models(settings)))
            return 0
        from storyteller.tui.app import run_app

        return run_app(settings, args.campaign)
    except StorytellerError as error:
        print(f"storyteller: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        problem = error.errors()[0]
        print(f"storyteller: invalid --{str(problem['loc'][0]).replace('_', '-')}: "
              f"{problem['msg']}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
