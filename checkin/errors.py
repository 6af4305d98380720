"""The exception tree. Every error the product raises on bad input names what is wrong.

CheckinError
 ├── ConfigError          a setting is missing or malformed (names the variable)
 ├── ScheduleError        a schedule file is invalid (file, line, key)
 ├── TemplateError        a message template fails to render (template name)
 ├── EnrollmentError      an enrollment request is invalid (field)
 │    └── ImportRowError  one CSV row is bad (line, column)
 ├── DatabaseNotReady     the database is not migrated to the current revision
 └── ChannelError         a send failed; ``permanent`` says whether retrying can help,
                          ``refusal`` (a ``Refusal``) why
"""

from __future__ import annotations

from enum import StrEnum


class CheckinError(Exception):
    """Base of every error checkin raises on purpose."""


class ConfigError(CheckinError):
    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class ScheduleError(CheckinError):
    """One problem in a schedule file, reported as ``file:line: key: problem``."""

    def __init__(self, file: str, line: int | None, key: str | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.problem = problem
        where = f"{file}:{line}" if line is not None else file
        what = f" {key}:" if key else ""
        super().__init__(f"{where}:{what} {problem}")


class ScheduleErrors(CheckinError):
    """Every problem found in one or more files; a file with any problem is not loaded."""

    def __init__(self, errors: list[ScheduleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class TemplateError(CheckinError):
    """A template that cannot render: ``template`` is its name under the templates directory,
    ``line`` the line of that file at fault when known. Reads ``template:line: problem``."""

    def __init__(self, template: str, problem: str, line: int | None = None) -> None:
        self.template = template
        self.problem = problem
        self.line = line
        where = f"{template}:{line}" if line is not None else template
        super().__init__(f"{where}: {problem}")


class EnrollmentError(CheckinError):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ImportRowError(EnrollmentError):
    def __init__(self, line: int, column: str, problem: str) -> None:
        self.line = line
        self.column = column
        super().__init__(column, problem)
        self.args = (f"{line}:{column}: {problem}",)

    def __str__(self) -> str:
        """``row:column: problem`` (the column by its header name, ``-`` for the whole row)."""
        return f"{self.line}:{self.column}: {self.problem}"


class DatabaseNotReady(CheckinError):
    pass


class Refusal(StrEnum):
    """Why a provider refused a message, in no provider's terms.

    Each channel translates its provider's codes (Twilio's 21610, an SMTP 550 …) into one of
    these inside the channel; the dispatcher and the delivery-status recorder act on the
    refusal alone, so a new provider needs no change outside its channel.
    """

    OPTED_OUT = "opted_out"  # the recipient told the provider to stop (SMS STOP)
    BAD_ADDRESS = "bad_address"  # the number or address does not exist or is malformed
    NOT_MOBILE = "not_mobile"  # the number cannot receive SMS (a landline)
    UNREACHABLE = "unreachable"  # a real address the provider cannot deliver to
    RATE_LIMITED = "rate_limited"  # the provider asks us to slow down; try later
    ACCOUNT_PROBLEM = "account_problem"  # our credentials or account, not this message
    REJECTED = "rejected"  # this message cannot be sent as it is (content, format)
    TRANSIENT = "transient"  # a passing failure; the same message may go later
    UNCERTAIN = "uncertain"  # the provider may have taken it: reconcile before any resend


class ChannelError(CheckinError):
    """A send failed. ``permanent`` means retrying the same message cannot succeed;
    ``refusal`` says why in provider-neutral terms (by default from ``permanent`` and
    ``ambiguous``); ``code`` is the provider's own code, kept for the record only."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        code: str | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
        refusal: Refusal | None = None,
    ) -> None:
        self.reason = reason
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after
        # ambiguous: the request may have reached the provider (5xx, read timeout);
        # the message must be reconciled before any resend.
        self.ambiguous = ambiguous
        if refusal is None:
            refusal = Refusal.UNCERTAIN if ambiguous else Refusal.REJECTED if permanent else Refusal.TRANSIENT
        self.refusal = refusal
        super().__init__(reason)
