"""The one exception hierarchy of mailbot.

Configuration errors are fatal at start and name the bad key; operational errors
concern one message, one delivery or one command and are caught at the message
loop, the scheduler's job wrapper or the CLI.
"""


class MailbotError(Exception):
    """Root of every error mailbot raises on purpose."""


class ConfigError(MailbotError):
    """The configuration is invalid; the message names the key."""


class OperationalError(MailbotError):
    """Something failed while working; the process goes on."""


class MessageError(OperationalError):
    """One received message cannot be processed; it is quarantined."""


class MailboxError(OperationalError):
    """An IMAP account cannot be reached, logged into or read."""


class DeliveryError(OperationalError):
    """An outgoing message could not be handed to the SMTP server."""

    def __init__(
        self, reply: str, *, permanent: bool, unreachable: bool = False
    ) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        # The server could not be reached at all: no letter of this run will
        # get through, whatever it holds.
        self.unreachable = unreachable


class AlreadyRunningError(OperationalError):
    """Another ``mailbot run`` holds the data folder."""


class CommandError(OperationalError):
    """A staff command or a CLI argument is refused; the message says why."""


class InvalidReferenceError(CommandError):
    """A ticket reference is malformed or its check digit is wrong."""
