"""The ``porter`` command: one module per subcommand; plugins add theirs through ``porter_add_commands``."""
from __future__ import annotations

import argparse
import sys
import traceback

from porter import __version__
from porter.errors import EXIT_FAILURE, InputError, PorterError


def build_parser(plugins=None) -> argparse.ArgumentParser:
    from porter.cli import compare, debug, doctor, precision_search, run, validate
    from porter.cli import plugins as plugins_cmd

    parser = argparse.ArgumentParser(prog="porter", description="Port trained models to inference targets: "
                                     "export, graph-fix, compile, preprocess, run, score — from one recipe.")
    parser.add_argument("--version", action="version", version=f"porter {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (run, validate, plugins_cmd, compare, doctor, debug, precision_search):
        module.add_parser(sub)
    if plugins is not None:
        # one plugin's broken command must not take every other command down with it
        for impl in plugins.hook.porter_add_commands.get_hookimpls():
            try:
                impl.function(subparsers=sub)
            except Exception as exc:  # noqa: BLE001
                print(f"porter: warning: plugin {impl.plugin_name!r} failed to add its commands: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
    return parser


def describe_error(exc: PorterError, recipe=None) -> str:
    """The error line: an InputError about a recipe field that names no file is about the recipe being run."""
    text = str(exc)
    if not isinstance(exc, InputError):
        return text
    if exc.file is None and exc.field and recipe:
        text = f"{recipe}: {text}"
    if exc.stage:
        text += f"\n  (in the {exc.stage} stage" + (f" of variant {exc.variant!r})" if exc.variant else ")")
    return text


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in argv
    args = None
    try:
        from porter.plugins import load_plugins

        plugins = load_plugins()
        parser = build_parser(plugins)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except PorterError as exc:
        if show_tb:
            traceback.print_exc()
        print(f"porter: error: {describe_error(exc, getattr(args, 'recipe', None))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("porter: interrupted; finished stages are kept in the workspace, re-run to resume", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - a bug: show it, with the one line users can act on
        traceback.print_exc()
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
