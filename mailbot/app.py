"""Assembly: builds the pieces of mailbot from the settings, once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailbot.clock import Clock, SystemClock
from mailbot.config import AccountConfig, Settings
from mailbot.db import SessionFactory, open_database
from mailbot.filing import Filing
from mailbot.imap import Mailbox
from mailbot.intake import Intake
from mailbot.letters import Correspondence
from mailbot.oauth import RefreshTokenSource, TokenSource
from mailbot.polling import Poller
from mailbot.rendering import Renderer, default_templates_dir
from mailbot.routing import Router
from mailbot.signing import Signer, load_signer
from mailbot.transport import FileTransport, SmtpTransport, Transport


@dataclass
class App:
    settings: Settings
    clock: Clock
    sessions: SessionFactory
    signer: Signer
    router: Router
    renderer: Renderer
    intake: Intake
    token_sources: dict[str, TokenSource] = field(default_factory=dict)

    @classmethod
    def build(
        cls, settings: Settings, clock: Clock | None = None, *, create: bool = True
    ) -> App:
        """Open the database and make every component."""
        clock = clock or SystemClock()
        sessions = open_database(settings.storage.url, create=create)
        signer = load_signer(settings)
        router = Router(settings.units)
        renderer = Renderer(
            default_templates_dir(),
            timezone=settings.office.timezone,
            approval=bool(settings.workflow.approval),
        )
        letters = Correspondence(settings, signer, renderer)
        filing = Filing(
            settings,
            clock=clock,
            signer=signer,
            router=router,
            correspondence=letters,
        )
        intake = Intake(settings, sessions, filing)
        return cls(settings, clock, sessions, signer, router, renderer, intake)

    @property
    def outbox_dir(self) -> Path:
        """Where the file outbox writes when no SMTP server is configured."""
        return self.settings.storage.data_dir / "outbox"

    def transport(self) -> Transport:
        """SMTP when configured, else .eml files under storage/outbox/."""
        if self.settings.smtp is None:
            return FileTransport(self.outbox_dir)
        return SmtpTransport(self.settings.smtp)

    def open_mailbox(self, account: AccountConfig) -> Mailbox:
        """An IMAP connection for one account, with OAuth2 tokens if it uses them."""
        return open_mailbox(account, self.token_sources, self.clock)

    def poller(self) -> Poller:
        """A poller over this app's intake."""
        return Poller(
            self.intake,
            self.sessions,
            self.clock,
            self.open_mailbox,
            lock_seconds=self.settings.intake.lock_seconds,
        )


def open_mailbox(
    account: AccountConfig, token_sources: dict[str, TokenSource], clock: Clock
) -> Mailbox:
    """An IMAP connection for one account, with OAuth2 tokens if it uses them."""
    tokens = None
    if account.auth == "oauth2":
        # One source per account for the life of the process, so that an
        # access token serves every poll until it is about to expire.
        if account.name not in token_sources:
            source = RefreshTokenSource(account, clock=clock.now)
            token_sources[account.name] = source
        tokens = token_sources[account.name]
    return Mailbox(account, tokens=tokens)
