"""Errors porter reports to users, each with the exit code the CLI returns for it."""
from __future__ import annotations

EXIT_FAILURE = 1  # a stage failed while running
EXIT_USAGE = 2  # bad input: recipe, checkpoint, data, options
EXIT_BUDGET = 3  # a regression budget was broken
EXIT_TOOL_MISSING = 4  # a vendor tool the variant needs is not installed here


class PorterError(Exception):
    """Base class: a message meant for the user and an exit code."""

    exit_code = EXIT_FAILURE


class InputError(PorterError):
    """Bad input from the user: names the file, the field or tensor, the value and what was expected."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, file=None, field: str | None = None):
        self.file = file
        self.field = field
        self.message = message  # without the file and field, for re-raising with another place
        # where in a run it surfaced; the core fills these in so the CLI can say which stage and variant
        self.stage: str | None = None
        self.variant: str | None = None
        where = ""
        if file is not None:
            where = f"{file}"
            if field:
                where += f": {field}"
            where += ": "
        elif field:
            where = f"{field}: "
        super().__init__(where + message)


class RecipeError(InputError):
    """A recipe that does not validate."""


class ToolMissingError(PorterError):
    """A vendor tool is not installed on this machine."""

    exit_code = EXIT_TOOL_MISSING


class StageError(PorterError):
    """An exception raised inside a plugin while it ran a stage."""

    exit_code = EXIT_FAILURE

    def __init__(self, *, stage: str, plugin: str, variant: str | None, cause: BaseException):
        self.stage = stage
        self.plugin = plugin
        self.variant = variant
        self.cause = cause
        where = f"variant {variant!r}, " if variant else ""
        super().__init__(f"{where}stage {stage!r} failed in plugin {plugin!r}: {type(cause).__name__}: {cause}")

