"""Configuration sections of the service policy, and the base of every section.

The SLA and its office hours, the digest, the mailbox health watch, the sender
checks and the staff workflow: what the office decides about how the service
runs, as opposed to where its mail and data live (``mailbot.config``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A plain address, checked only for its shape: a typo such as "camat at
# porong" must fail at start, not when the first letter to it bounces.
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")]
Role = Literal["operator", "kasubag_umum", "sekcam", "camat", "unit"]
# The verification chain of the service standard, lowest post first; approval
# runs up it, and escalation goes up it from the Kasubag.
VERIFICATION_CHAIN: tuple[Role, ...] = ("operator", "kasubag_umum", "sekcam", "camat")
POST_TITLES: dict[Role, str] = {
    "operator": "Operator",
    "kasubag_umum": "Kasubag Umum dan Kepegawaian",
    "sekcam": "Sekretaris Camat",
    "camat": "Camat",
    "unit": "staf unit",
}


class Section(BaseModel):
    # Unknown keys are typos more often than not: refuse them by name.
    model_config = ConfigDict(extra="forbid", frozen=True)


_HOURS = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"


class OfficeHoursConfig(Section):
    """Opening hours per weekday as ``"07:30-16:00"``; a missing day is closed."""

    mon: Annotated[str | None, Field(pattern=_HOURS)] = "07:30-16:00"
    tue: Annotated[str | None, Field(pattern=_HOURS)] = "07:30-16:00"
    wed: Annotated[str | None, Field(pattern=_HOURS)] = "07:30-16:00"
    thu: Annotated[str | None, Field(pattern=_HOURS)] = "07:30-16:00"
    fri: Annotated[str | None, Field(pattern=_HOURS)] = "07:30-14:30"
    sat: Annotated[str | None, Field(pattern=_HOURS)] = None
    sun: Annotated[str | None, Field(pattern=_HOURS)] = None

    @model_validator(mode="after")
    def _opens_before_closing(self) -> OfficeHoursConfig:
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
            hours = getattr(self, day)
            if hours is not None and hours[:5] >= hours[6:]:
                raise ValueError(f"{day}: {hours!r} closes before it opens")
        return self


class SlaConfig(Section):
    """The response promise: how due times run, reminders and escalation."""

    mode: Literal["calendar", "working_hours"] = "calendar"
    reminder_share: Annotated[float, Field(gt=0, lt=1)] = 0.75
    # Hours after the due time at which the ticket goes to the Kasubag Umum,
    # the Sekcam and the Camat; fewer entries stop the chain earlier.
    escalation_delays_hours: Annotated[
        tuple[Annotated[float, Field(ge=0)], ...], Field(max_length=3)
    ] = (0.0, 4.0, 8.0)
    office_hours: OfficeHoursConfig = OfficeHoursConfig()
    public_holidays: bool = True
    holiday_country: str = "ID"
    sweep_interval_seconds: Annotated[float, Field(gt=0)] = 300.0

    @field_validator("escalation_delays_hours")
    @classmethod
    def _ascending(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(value):
            raise ValueError("delays must not decrease along the chain")
        return value


class DigestConfig(Section):
    """The Camat's daily digest."""

    enabled: bool = True
    time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "07:00"
    # Empty: every [[staff]] with role = "camat".
    to: tuple[EmailAddress, ...] = ()
    # Gmail clips a message past about 100 KB: list this many, count the rest.
    overdue_rows: Annotated[int, Field(gt=0, le=1000)] = 40


class HealthConfig(Section):
    """The mailbox health watch."""

    stale_minutes: Annotated[float, Field(gt=0)] = 30.0
    # Polls failing this long since the last success open an incident; a
    # shorter hiccup (one dropped connection) tells nobody.
    alert_after_minutes: Annotated[float, Field(ge=0)] = 5.0
    check_interval_seconds: Annotated[float, Field(gt=0)] = 60.0


class SecurityConfig(Section):
    # The authserv-id our own receiving server writes in Authentication-Results;
    # when set, staff commands need its DKIM or SPF pass for the sender's domain.
    trusted_authserv_id: str | None = None


class WorkflowConfig(Section):
    reopen_days: Annotated[int, Field(ge=0, le=365)] = 14
    approval: tuple[Role, ...] = ()

    @field_validator("approval")
    @classmethod
    def _posts_only(cls, roles: tuple[Role, ...]) -> tuple[Role, ...]:
        # Unit staff write the drafts; approving is for the posts above them.
        if "unit" in roles:
            raise ValueError(
                "'unit' cannot approve; use operator, kasubag_umum, sekcam or camat"
            )
        return roles
