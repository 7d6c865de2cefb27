"""Configuration: bad keys are refused by name, files are found in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from mailbot.config import (
    AccountConfig,
    IntakeConfig,
    Keyword,
    OfficeConfig,
    SmtpConfig,
    StaffConfig,
    StorageConfig,
    UnitConfig,
    embedded_defaults,
    load_settings,
    parse_settings,
    read_secret,
)
from mailbot.errors import ConfigError
from mailbot.policy import (
    DigestConfig,
    HealthConfig,
    OfficeHoursConfig,
    SecurityConfig,
    SlaConfig,
    WorkflowConfig,
)

REPO = Path(__file__).parents[1]
EXAMPLE = REPO / "examples" / "porong.toml"
DEFAULTS = REPO / "mailbot" / "defaults.toml"

ACCOUNT = """
[[accounts]]
name = "dinas"
host = "mail.sidoarjokab.go.id"
port = 993
username = "porong@sidoarjokab.go.id"
password_env = "MAILBOT_DINAS_PASSWORD"
"""

UNIT_A = '[[units]]\ncode = "a"\nname = "A"\nfallback = true\n'
UNIT_B = '[[units]]\ncode = "b"\nname = "B"\n'


def refusal(text: str) -> str:
    """The message of the ConfigError that ``text`` raises."""
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, "mailbot.toml")
    return str(raised.value)


def units_block(path: Path) -> str:
    """The text between the UNITS-BEGIN and UNITS-END marker lines."""
    text = path.read_text("utf-8")
    return text[text.index("# UNITS-BEGIN") : text.index("# UNITS-END")]


def test_typo_in_office_is_refused_by_name() -> None:
    message = refusal('[office]\nreference_prefx = "PRG"\n')

    assert message == (
        "mailbot.toml: office.reference_prefx: Extra inputs are not permitted"
    )


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("70000", "Input should be less than 65536"),
        ("0", "Input should be greater than 0"),
        ('"imaps"', "Input should be a valid integer, not 'imaps'"),
        ('"993"', "Input should be a valid integer, not '993'"),
        ("993.0", "Input should be a valid integer, not 993.0"),
    ],
)
def test_bad_port_is_refused_by_name(port: str, expected: str) -> None:
    message = refusal(ACCOUNT.replace("993", port))

    assert message == f"mailbot.toml: accounts[0].port: {expected}"


def test_unit_staff_cannot_be_approvers() -> None:
    assert refusal('[workflow]\napproval = ["unit", "sekcam"]\n') == (
        "mailbot.toml: workflow.approval: 'unit' cannot approve; use operator, "
        "kasubag_umum, sekcam or camat"
    )


def test_plain_text_is_refused_for_a_remote_host() -> None:
    message = refusal(ACCOUNT + 'security = "none"\n')

    assert message == (
        "mailbot.toml: accounts[0]: "
        "security = 'none' is allowed only for a loopback host"
    )


def test_plain_text_is_allowed_on_loopback() -> None:
    text = ACCOUNT.replace("mail.sidoarjokab.go.id", "127.0.0.1")

    settings = parse_settings(text + 'security = "none"\n', "mailbot.toml")

    assert settings.accounts[0].security == "none"


def test_plain_text_smtp_is_refused_for_a_remote_host() -> None:
    message = refusal('[smtp]\nhost = "smtp.example.go.id"\nsecurity = "none"\n')

    assert message == (
        "mailbot.toml: smtp: security = 'none' is allowed only for a loopback host"
    )


def test_two_fallback_units_are_refused() -> None:
    message = refusal(UNIT_A + UNIT_B.replace('"B"\n', '"B"\nfallback = true\n'))

    assert message == (
        "mailbot.toml: units: exactly one unit needs fallback = true, found 2 (a, b)"
    )


def test_no_fallback_unit_is_refused() -> None:
    message = refusal(UNIT_B)

    assert message == (
        "mailbot.toml: units: exactly one unit needs fallback = true, found 0"
    )


def test_staff_with_unknown_unit_is_refused() -> None:
    staff = '[[staff]]\nemail = "x@example.go.id"\nname = "X"\nunit = "keuangan"\n'

    message = refusal(UNIT_A + staff)

    assert message == (
        "mailbot.toml: staff[0].unit: unknown unit 'keuangan' for x@example.go.id "
        "(units: a)"
    )


@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        ("", "oauth2_token_url"),
        (
            'oauth2_token_url = "https://oauth2.googleapis.com/token"\n',
            "oauth2_client_id",
        ),
        (
            'oauth2_token_url = "https://oauth2.googleapis.com/token"\n'
            'oauth2_client_id = "client"\n',
            "oauth2_refresh_token_env",
        ),
    ],
)
def test_oauth2_without_its_keys_is_refused(extra: str, missing: str) -> None:
    text = ACCOUNT.replace('password_env = "MAILBOT_DINAS_PASSWORD"', 'auth = "oauth2"')

    message = refusal(text + extra)

    assert message == (f"mailbot.toml: accounts[0]: auth = 'oauth2' needs {missing}")


def test_password_auth_without_password_env_is_refused() -> None:
    message = refusal(ACCOUNT.replace('password_env = "MAILBOT_DINAS_PASSWORD"', ""))

    assert message == (
        "mailbot.toml: accounts[0]: auth = 'password' needs password_env"
    )


def test_invalid_toml_is_refused_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "mailbot.toml"
    path.write_text('[office\nname = "Kecamatan Porong"\n', "utf-8")

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert str(raised.value) == (
        f"{path}: not valid TOML: "
        "Expected ']' at the end of a table declaration (at line 1, column 8)"
    )


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert str(raised.value) == f"{path}: cannot read: No such file or directory"


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mailbot.toml"
    path.write_bytes(b'[office]\nname = "Kecamatan Porong \xe9"\n')

    with pytest.raises(ConfigError) as raised:
        load_settings(path)

    assert str(raised.value) == f"{path}: not UTF-8 text (byte 34)"


def test_example_loads_with_the_real_office() -> None:
    settings = load_settings(EXAMPLE)

    assert settings.source == str(EXAMPLE)
    assert settings.office == OfficeConfig(signing_key_env="MAILBOT_SIGNING_KEY")
    assert [(a.name, a.host, a.port, a.auth) for a in settings.accounts] == [
        ("dinas", "mail.sidoarjokab.go.id", 993, "password"),
        ("gmail", "imap.gmail.com", 993, "oauth2"),
    ]
    assert settings.account("gmail").oauth2_token_url == (
        "https://oauth2.googleapis.com/token"
    )
    assert settings.smtp is not None
    assert (settings.smtp.port, settings.smtp.security) == (465, "ssl")
    assert settings.fallback_unit.code == "umum"


def test_example_has_the_chain_and_a_member_per_unit() -> None:
    settings = load_settings(EXAMPLE)

    roles = [s.role for s in settings.staff if s.role != "unit"]
    unit_staff = {s.unit for s in settings.staff if s.role == "unit"}

    assert roles == ["operator", "kasubag_umum", "sekcam", "camat"]
    assert unit_staff == {u.code for u in settings.units}


def test_example_units_equal_the_embedded_defaults() -> None:
    assert load_settings(EXAMPLE).units == embedded_defaults().units
    assert units_block(EXAMPLE) == units_block(DEFAULTS)


@pytest.mark.parametrize(
    "model",
    [
        OfficeConfig,
        StorageConfig,
        IntakeConfig,
        AccountConfig,
        SmtpConfig,
        UnitConfig,
        Keyword,
        StaffConfig,
        SlaConfig,
        OfficeHoursConfig,
        DigestConfig,
        HealthConfig,
        SecurityConfig,
        WorkflowConfig,
    ],
)
def test_example_names_every_key(model: type[BaseModel]) -> None:
    text = EXAMPLE.read_text("utf-8")

    absent = [
        key
        for key in sorted(model.model_fields)
        if not re.search(rf"\b{key} =|\.{key}\]", text)
    ]

    assert absent == []


def test_example_sets_no_secret_values() -> None:
    text = EXAMPLE.read_text("utf-8")

    secrets = re.findall(r"^#?\s*(\w*(?:password|secret|token))\s*=", text, re.M)

    assert secrets == []


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three configuration files naming where they are; cwd is a fresh dir."""
    found = {}
    for name in ("explicit", "env", "cwd"):
        folder = tmp_path / name
        folder.mkdir()
        found[name] = folder / "mailbot.toml"
        found[name].write_text(f'[office]\nname = "Kecamatan {name}"\n', "utf-8")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    return found


def test_explicit_path_comes_first(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_CONFIG", str(places["env"]))

    settings = load_settings(places["explicit"])

    assert settings.office.name == "Kecamatan explicit"


def test_environment_comes_before_working_directory(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_CONFIG", str(places["env"]))

    settings = load_settings()

    assert (settings.office.name, settings.source) == (
        "Kecamatan env",
        str(places["env"]),
    )


def test_working_directory_file_is_next(places: dict[str, Path]) -> None:
    settings = load_settings()

    assert (settings.office.name, settings.source) == ("Kecamatan cwd", "mailbot.toml")


def test_embedded_defaults_come_last(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(places["env"].parents[1])

    settings = load_settings()

    assert settings.source == "<embedded defaults>"
    assert settings.units == embedded_defaults().units
    assert settings.accounts == ()


def test_file_without_units_gets_the_default_units(places: dict[str, Path]) -> None:
    assert load_settings().units == embedded_defaults().units


def test_missing_secret_names_the_variable_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAILBOT_TEST_ABSENT", raising=False)

    with pytest.raises(ConfigError) as raised:
        read_secret("MAILBOT_TEST_ABSENT", "smtp.password_env")

    assert str(raised.value) == (
        "smtp.password_env: environment variable MAILBOT_TEST_ABSENT is not set"
    )


def test_secret_without_variable_name_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        read_secret(None, "smtp.password_env")

    assert str(raised.value) == "smtp.password_env: no environment variable named"


def test_secret_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOT_TEST_PRESENT", "rahasia-sekali")

    secret = read_secret("MAILBOT_TEST_PRESENT", "smtp.password_env")

    assert secret.get_secret_value() == "rahasia-sekali"
    assert "rahasia" not in f"{secret} {secret!r}"


def test_a_malformed_staff_address_is_refused() -> None:
    staff = '[[staff]]\nemail = "camat at porong"\nname = "Camat"\nrole = "camat"\n'

    message = refusal(UNIT_A + staff)

    assert message == (
        "mailbot.toml: staff[0].email: String should match pattern "
        "'^[^@\\s<>,;]+@[^@\\s<>,;]+\\.[^@\\s<>,;]+$'"
    )


def test_unit_staff_without_a_unit_is_refused() -> None:
    staff = '[[staff]]\nemail = "x@example.go.id"\nname = "X"\nrole = "unit"\n'

    message = refusal(UNIT_A + staff)

    assert message == (
        "mailbot.toml: staff[0]: staff x@example.go.id: role 'unit' needs unit = CODE"
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            '[office]\nresponse_hours = "24"\n',
            "office.response_hours: Input should be a valid integer, not '24'",
        ),
        (
            ACCOUNT + 'tls_verify = "no"\n',
            "accounts[0].tls_verify: Input should be a valid boolean, not 'no'",
        ),
        (
            "[intake]\nidle = 1\n",
            "intake.idle: Input should be a valid boolean, not 1",
        ),
        (
            "[digest]\ntime = 07:00:00\n",
            "digest.time: String should match pattern '^([01]\\d|2[0-3]):[0-5]\\d$'",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_not_coerced(
    setting: str, expected: str
) -> None:
    assert refusal(setting) == f"mailbot.toml: {expected}"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            '[storage]\ndatabase_url = "postgres://u@db/mailbot"\n',
            "storage.database_url: 'postgres' is not supported; use sqlite:///PATH "
            "or postgresql+psycopg://USER@HOST:PORT/DATABASE",
        ),
        (
            ACCOUNT + 'ca_file = "/nonexistent/ca.pem"\n',
            "accounts[0].ca_file: no such file: /nonexistent/ca.pem",
        ),
    ],
)
def test_a_setting_that_would_fail_later_is_refused_now(
    setting: str, expected: str
) -> None:
    assert refusal(setting) == f"mailbot.toml: {expected}"


@pytest.mark.parametrize(
    ("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25)]
)
def test_the_smtp_port_follows_the_security_when_not_given(
    security: str, port: int
) -> None:
    text = f'[smtp]\nhost = "127.0.0.1"\nsecurity = "{security}"\n'

    settings = parse_settings(text, "mailbot.toml")

    assert settings.smtp is not None
    assert settings.smtp.port == port


def test_an_smtp_login_without_its_password_is_refused() -> None:
    message = refusal('[smtp]\nhost = "smtp.example.org"\nusername = "porong"\n')

    assert message == (
        "mailbot.toml: smtp: username needs password_env (the login's password)"
    )


def test_an_smtp_timeout_longer_than_a_transaction_may_idle_is_refused() -> None:
    message = refusal('[smtp]\nhost = "smtp.example.org"\ntimeout_seconds = 300.0\n')

    assert message == (
        "mailbot.toml: smtp.timeout_seconds: Input should be less than or equal to 240"
    )
