"""Errors that carry one readable line for the person who caused them."""


class SymptomDxError(Exception):
    """Base class: the message is meant to be shown to a user as is."""


class UnknownSymptomError(SymptomDxError, ValueError):
    """One or more symptom names are not in the vocabulary."""

    shown = 5  # names listed in the message; the rest are counted

    def __init__(self, unknown: dict[str, list[str]]):
        self.unknown = unknown
        parts = []
        for name, close in list(unknown.items())[: self.shown]:
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            shown = name if len(name) <= 60 else name[:57] + "..."
            parts.append(f"'{shown}'{hint}")
        if len(unknown) > self.shown:
            parts.append(f"and {len(unknown) - self.shown} more")
        noun = "symptom" if len(unknown) == 1 else "symptoms"
        super().__init__(f"unknown {noun}: {'; '.join(parts)}")


class EmptySymptomsError(SymptomDxError, ValueError):
    """No symptom was given."""

    def __init__(self, message: str = "no symptoms given: name at least one symptom"):
        super().__init__(message)


class DatasetError(SymptomDxError):
    """A dataset broke its contract; ``problems`` lists every problem found, one line each."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"invalid dataset {source}: {problems[0]}{more}")


class SourceError(SymptomDxError):
    """A data source could not be read (missing file, bad URL, checksum mismatch, S3 error)."""


def first_line(e: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none): libraries' errors
    can carry whole responses or tracebacks, and a user is shown one readable line."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
