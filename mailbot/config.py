"""Configuration: one validated, typed object read from TOML.

Resolution order: ``--config PATH``, ``$MAILBOT_CONFIG``, ``./mailbot.toml``, then
the embedded demo defaults (``mailbot/defaults.toml``). Secrets never live in the
file: keys ending in ``_env`` name the environment variable that holds them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from mailbot.errors import ConfigError
from mailbot.policy import (
    DigestConfig,
    EmailAddress,
    HealthConfig,
    Role,
    SecurityConfig,
    SlaConfig,
    WorkflowConfig,
)
from mailbot.policy import Section as _Section

Security = Literal["ssl", "starttls", "none"]


class OfficeConfig(_Section):
    name: str = "Kecamatan Porong"
    address: str = "Jl. Bhayangkari No. 1, Porong, Sidoarjo, Jawa Timur"
    phone: str = "(031) 8851003"
    email: EmailAddress = "porong@sidoarjokab.go.id"
    website: str = "https://kecporong.sidoarjokab.go.id"
    timezone: str = "Asia/Jakarta"
    reference_prefix: Annotated[str, Field(pattern=r"^[A-Z]{2,6}$")] = "PRG"
    response_hours: Annotated[int, Field(gt=0, le=24 * 30)] = 24
    signing_key_env: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


# The drivers this package installs; "postgres://" and plain "postgresql://"
# would reach for drivers it does not have.
_DATABASE_SCHEMES = ("sqlite:///", "postgresql+psycopg://")


class StorageConfig(_Section):
    data_dir: Path = Path("storage")
    database_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_DATABASE_SCHEMES):
            scheme = value.split(":", 1)[0]
            raise ValueError(
                f"{scheme!r} is not supported; use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST:PORT/DATABASE"
            )
        return value

    @property
    def url(self) -> str:
        """The database URL; SQLite inside ``data_dir`` unless configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mailbot.sqlite3').resolve()}"


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(_Section):
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)]
    security: Security = "ssl"
    ca_file: Path | None = None
    # Turning verification off is loud on purpose: it must be written out.
    tls_verify: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> _Server:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError("security = 'none' is allowed only for a loopback host")
        return self


class AccountConfig(_Server):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    username: str
    address: str | None = None
    auth: Literal["password", "oauth2"] = "password"
    password_env: str | None = None
    oauth2_token_url: str | None = None
    oauth2_client_id: str | None = None
    oauth2_client_secret_env: str | None = None
    oauth2_refresh_token_env: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    batch_size: Annotated[int, Field(gt=0, le=5000)] = 100
    # The first poll of a folder this database has never seen takes only the
    # messages nobody has read: a new installation on a mailbox of years, or a
    # new database, must not acknowledge old mail. "all" takes everything.
    first_poll: Literal["unseen", "all"] = "unseen"
    # The authserv-id this inbox's receiving server writes; overrides
    # [security] trusted_authserv_id for mail polled from this account.
    trusted_authserv_id: str | None = None

    @model_validator(mode="after")
    def _auth_complete(self) -> AccountConfig:
        if self.auth == "password" and not self.password_env:
            raise ValueError("auth = 'password' needs password_env")
        if self.auth == "oauth2":
            for key in (
                "oauth2_token_url",
                "oauth2_client_id",
                "oauth2_refresh_token_env",
            ):
                if not getattr(self, key):
                    raise ValueError(f"auth = 'oauth2' needs {key}")
        return self

    @property
    def inbox_address(self) -> str:
        """The address citizens write to; replies come back to it."""
        return self.address or self.username


# The submission port that goes with each kind of transport security.
_SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


class SmtpConfig(_Server):
    port: Annotated[int, Field(gt=0, lt=65536)] = 465
    username: str | None = None
    password_env: str | None = None
    from_address: EmailAddress = "porong@sidoarjokab.go.id"
    from_name: str = "Layanan Pengaduan Kecamatan Porong"
    max_attempts: Annotated[int, Field(gt=0, le=50)] = 8
    retry_base_seconds: Annotated[float, Field(gt=0)] = 60.0
    retry_cap_seconds: Annotated[float, Field(gt=0)] = 3600.0
    # An unreachable server is an outage, not the letter's fault: the letter
    # waits for it this long (Postfix's queue lifetime) whatever its attempts.
    outage_lifetime_hours: Annotated[float, Field(gt=0)] = 120.0
    # A letter is handed to the server inside its outbox row's transaction,
    # which PostgreSQL ends after db.IDLE_IN_TRANSACTION_SECONDS (300) idle.
    timeout_seconds: Annotated[float, Field(gt=0, le=240)] = 60.0

    @model_validator(mode="before")
    @classmethod
    def _port_of_security(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data:
            security = data.get("security", "ssl")
            return {**data, "port": _SMTP_PORTS.get(security, 465)}
        return data

    @model_validator(mode="after")
    def _login_has_password(self) -> SmtpConfig:
        if self.username and not self.password_env:
            raise ValueError("username needs password_env (the login's password)")
        return self


class Keyword(_Section):
    phrase: Annotated[str, Field(min_length=1)]
    weight: Annotated[float, Field(gt=0)] = 1.0


def _keyword(value: Any) -> Any:
    return {"phrase": value} if isinstance(value, str) else value


class UnitConfig(_Section):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    emails: tuple[EmailAddress, ...] = ()
    keywords: tuple[Keyword, ...] = ()
    fallback: bool = False

    @field_validator("keywords", mode="before")
    @classmethod
    def _plain_strings(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(_keyword(item) for item in value)
        return value


class StaffConfig(_Section):
    email: EmailAddress
    name: str
    role: Role = "unit"
    unit: str | None = None

    @model_validator(mode="after")
    def _unit_staff_have_a_unit(self) -> StaffConfig:
        if self.role == "unit" and self.unit is None:
            raise ValueError(f"staff {self.email}: role 'unit' needs unit = CODE")
        return self


class IntakeConfig(_Section):
    poll_interval_seconds: Annotated[float, Field(gt=0)] = 60.0
    send_interval_seconds: Annotated[float, Field(gt=0)] = 30.0
    lock_seconds: Annotated[float, Field(gt=0)] = 600.0
    max_message_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    max_attachment_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    # Automatic answers (acknowledgements) per address and window: loop guard.
    auto_reply_limit: Annotated[int, Field(ge=0)] = 5
    auto_reply_window_hours: Annotated[float, Field(gt=0)] = 24.0
    # `mailbot run` keeps an IMAP IDLE connection per account and polls as soon
    # as mail arrives; the interval above stays the fallback.
    idle: bool = True


class Settings(_Section):
    office: OfficeConfig = OfficeConfig()
    storage: StorageConfig = StorageConfig()
    intake: IntakeConfig = IntakeConfig()
    accounts: tuple[AccountConfig, ...] = ()
    smtp: SmtpConfig | None = None
    units: tuple[UnitConfig, ...] = ()
    staff: tuple[StaffConfig, ...] = ()
    sla: SlaConfig = SlaConfig()
    digest: DigestConfig = DigestConfig()
    health: HealthConfig = HealthConfig()
    security: SecurityConfig = SecurityConfig()
    workflow: WorkflowConfig = WorkflowConfig()
    source: str = Field(default="<embedded defaults>", exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        _check_units(self.units)
        _check_unique("accounts", [a.name for a in self.accounts])
        _check_unique("staff", [s.email.lower() for s in self.staff])
        codes = {u.code for u in self.units}
        for i, staff in enumerate(self.staff):
            if staff.unit is not None and staff.unit not in codes:
                raise ValueError(
                    f"staff[{i}].unit: unknown unit {staff.unit!r} for {staff.email} "
                    f"(units: {', '.join(sorted(codes))})"
                )
        return self

    def unit(self, code: str) -> UnitConfig:
        """The unit with this code."""
        for unit in self.units:
            if unit.code == code:
                return unit
        raise KeyError(code)

    @property
    def fallback_unit(self) -> UnitConfig:
        """The desk that takes whatever no keyword claims."""
        return next(u for u in self.units if u.fallback)

    def staff_with_role(self, role: Role) -> tuple[str, ...]:
        """The addresses of the staff who hold this role."""
        return tuple(s.email for s in self.staff if s.role == role)

    def first_held(self, roles: Sequence[Role]) -> Role | None:
        """The first of ``roles`` that some staff member holds."""
        return next((role for role in roles if self.staff_with_role(role)), None)

    def unit_recipients(self, code: str) -> tuple[str, ...]:
        """Who hears about a unit's tickets: its mailboxes, then its [[staff]]."""
        unit = self.unit(code)
        addresses = [*unit.emails, *(s.email for s in self.staff if s.unit == code)]
        seen: dict[str, str] = {}
        for address in addresses:
            seen.setdefault(address.lower(), address)
        return tuple(seen.values())

    @property
    def own_addresses(self) -> frozenset[str]:
        """The office's own addresses, lower case: mail from them is ours."""
        addresses = {self.office.email.lower()}
        addresses.update(a.inbox_address.lower() for a in self.accounts)
        if self.smtp is not None:
            addresses.add(self.smtp.from_address.lower())
        return frozenset(addresses)

    def staff_member(self, address: str) -> StaffConfig | None:
        """The staff entry for this address; a unit's own mailbox acts as its unit."""
        wanted = address.strip().lower()
        for staff in self.staff:
            if staff.email.lower() == wanted:
                return staff
        for unit in self.units:
            if wanted in (e.lower() for e in unit.emails):
                return StaffConfig(email=wanted, name=unit.name, unit=unit.code)
        return None

    def account(self, name: str) -> AccountConfig:
        """The account with this name."""
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)


def _check_unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{section}: {name!r} appears twice")
        seen.add(name)


def _check_units(units: tuple[UnitConfig, ...]) -> None:
    if not units:
        raise ValueError("units: at least one unit is needed")
    _check_unique("units", [u.code for u in units])
    fallbacks = [u.code for u in units if u.fallback]
    if len(fallbacks) != 1:
        named = f" ({', '.join(fallbacks)})" if fallbacks else ""
        raise ValueError(
            "units: exactly one unit needs fallback = true, found "
            f"{len(fallbacks)}{named}"
        )


def secret_keys(settings: Settings) -> list[tuple[str, str]]:
    """Every secret the settings need: (key, environment variable)."""
    wanted: list[tuple[str, str | None]] = [
        ("office.signing_key_env", settings.office.signing_key_env)
    ]
    for i, account in enumerate(settings.accounts):
        if account.auth == "password":
            wanted.append((f"accounts[{i}].password_env", account.password_env))
        else:
            wanted.append(
                (
                    f"accounts[{i}].oauth2_refresh_token_env",
                    account.oauth2_refresh_token_env,
                )
            )
            wanted.append(
                (
                    f"accounts[{i}].oauth2_client_secret_env",
                    account.oauth2_client_secret_env,
                )
            )
    if settings.smtp is not None and settings.smtp.username:
        wanted.append(("smtp.password_env", settings.smtp.password_env))
    return [(key, env) for key, env in wanted if env]


def require_secrets(settings: Settings) -> None:
    """Refuse to start when a secret the settings name is not in the environment."""
    missing = [
        f"{key}: environment variable {env} is not set"
        for key, env in secret_keys(settings)
        if not os.environ.get(env)
    ]
    if missing:
        raise ConfigError("; ".join(missing))


def read_secret(env_name: str | None, key: str) -> SecretStr:
    """Read the secret named by a ``*_env`` key from the environment."""
    if not env_name:
        raise ConfigError(f"{key}: no environment variable named")
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"{key}: environment variable {env_name} is not set")
    return SecretStr(value)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        ).lstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"].endswith("_type"):
            message += f", not {item['input']!r}"
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def _toml_scalar(value: object) -> str:
    # TOML dates and times: every setting that holds one is a quoted string.
    return str(value)


def parse_settings(text: str, source: str) -> Settings:
    """Validate TOML text into settings, naming the bad key on failure."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc

    if "units" not in raw:
        raw["units"] = _default_document()["units"]
    # Validated as JSON in strict mode: TOML already gives every value its type,
    # so "24" for a number or "no" for a boolean is a mistake to name, not to
    # coerce; JSON mode still reads strings as paths and arrays as tuples.
    document = json.dumps({**raw, "source": source}, default=_toml_scalar)
    try:
        return Settings.model_validate_json(document, strict=True)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from exc


# Read beside this module rather than through importlib.resources, which an
# editable install's path hook confuses into a namespace package.
_DEFAULTS = Path(__file__).with_name("defaults.toml")


def _default_document() -> dict[str, Any]:
    return tomllib.loads(_DEFAULTS.read_text("utf-8"))


def embedded_defaults() -> Settings:
    """The demo settings shipped inside the package."""
    return parse_settings(_DEFAULTS.read_text("utf-8"), "<embedded defaults>")


def load_settings(path: Path | None = None) -> Settings:
    """Find and load the configuration in the documented order."""
    if path is None and os.environ.get("MAILBOT_CONFIG"):
        path = Path(os.environ["MAILBOT_CONFIG"])
    if path is None and Path("mailbot.toml").is_file():
        path = Path("mailbot.toml")
    if path is None:
        return embedded_defaults()

    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    return parse_settings(text, str(path))
