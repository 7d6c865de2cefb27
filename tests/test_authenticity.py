"""Sender checks: Authentication-Results of the trusted server, aligned domains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbot.authenticity import SenderCheck, check_sender
from mailbot.parsing import parse_message

TRUSTED = "mx.porong.example.go.id"


def _mail(*results: str, received_after: int = 0) -> bytes:
    lines = [f"Authentication-Results: {r}\r\n" for r in results]
    if received_after:
        lines.insert(received_after, f"Received: from x by {TRUSTED}; 3 Dec 2026\r\n")
    headers = "".join(lines)
    return (
        f"{headers}From: Staf <ekbang.staf@porong.example.go.id>\r\n"
        "To: porong@sidoarjokab.go.id\r\nSubject: Re: x\r\n"
        "Message-ID: <a@b>\r\n\r\n#catatan ok\r\n"
    ).encode()


def _check(*results: str, signed: bool = False, received_after: int = 0) -> SenderCheck:
    raw = _mail(*results, received_after=received_after)
    mail = parse_message(raw, now=datetime(2026, 12, 3, tzinfo=UTC))
    return check_sender(mail, (TRUSTED,), signed_reply=signed)


@pytest.mark.parametrize(
    ("results", "authentic", "evidence"),
    [
        ((f"{TRUSTED}; dkim=pass header.d=porong.example.go.id",), True, ("dkim",)),
        ((f"{TRUSTED}; dkim=pass header.d=example.go.id",), True, ("dkim",)),
        (
            (f"{TRUSTED}; spf=pass (sender ok) smtp.mailfrom=x@porong.example.go.id",),
            True,
            ("spf",),
        ),
        ((f"{TRUSTED}; dkim=pass header.d=attacker.example",), False, ()),
        ((f"{TRUSTED}; dkim=fail header.d=porong.example.go.id; spf=none",), False, ()),
        (("mx.attacker.example; dkim=pass header.d=porong.example.go.id",), False, ()),
        ((), False, ()),
    ],
)
def test_only_our_servers_aligned_pass_counts(
    results: tuple[str, ...], authentic: bool, evidence: tuple[str, ...]
) -> None:
    check = _check(*results)

    assert (check.authentic, check.evidence) == (authentic, evidence)


def test_a_header_naming_our_server_below_the_top_is_the_senders_own() -> None:
    # Trial 28: the real receiving server (another provider) wrote the top
    # header; the sender had added one in our server's name below it.
    check = _check(
        "mail.sidoarjokab.go.id; dkim=none; spf=fail smtp.mailfrom=evil.example",
        f"{TRUSTED}; dkim=pass header.d=porong.example.go.id",
    )

    assert check == SenderCheck(
        False, (), "topmost Authentication-Results is not our server's"
    )


def test_our_servers_fail_on_top_is_not_undone_by_a_pass_below() -> None:
    check = _check(
        f"{TRUSTED}; dkim=fail header.d=porong.example.go.id",
        f"{TRUSTED}; dkim=pass header.d=porong.example.go.id",
    )

    assert check == SenderCheck(False, (), "no aligned DKIM, SPF or DMARC pass")


def test_a_quoted_local_part_cannot_write_a_result_of_its_own() -> None:
    check = _check(
        f"{TRUSTED}; spf=pass "
        'smtp.mailfrom="x;dkim=pass header.d=porong.example.go.id x"@evil.example'
    )

    assert check == SenderCheck(False, (), "no aligned DKIM, SPF or DMARC pass")


def test_a_signed_reply_is_evidence_but_not_enough_alone() -> None:
    check = _check(signed=True)

    assert check == SenderCheck(
        False, ("signed-reply",), "no Authentication-Results of ours"
    )


def test_without_a_trusted_server_the_staff_address_is_taken() -> None:
    mail = parse_message(_mail(), now=datetime(2026, 12, 3, tzinfo=UTC))

    check = check_sender(mail, (), signed_reply=True)

    assert check == SenderCheck(
        True, ("staff-address", "signed-reply"), "no trusted server set"
    )


def test_a_domain_hidden_in_a_comment_left_open_vouches_for_nothing() -> None:
    # Trial 32: our server copied the quoted envelope sender into its SPF
    # comment; the quote's parentheses left a header.d= outside any comment.
    sender = '"(x) header.d=porong.example.go.id (y"@evil.example'
    check = _check(
        f"{TRUSTED}; spf=pass ({TRUSTED}: domain of {sender} designates "
        f"203.0.113.9 as permitted sender) smtp.mailfrom={sender}; dkim=none"
    )

    assert check == SenderCheck(False, (), "topmost Authentication-Results unreadable")


def test_a_domain_inside_another_propertys_value_does_not_count() -> None:
    check = _check(
        f"{TRUSTED}; dkim=pass header.s=header.d=porong.example.go.id "
        "header.d=evil.example"
    )

    assert check == SenderCheck(False, (), "no aligned DKIM, SPF or DMARC pass")


def test_a_gmail_shaped_header_with_versions_and_comments_is_read() -> None:
    check = _check(
        f"{TRUSTED.upper()} 1;\r\n       dkim=pass (2048-bit key; unprotected) "
        "header.i=@porong.example.go.id header.s=20230601 header.b=Ab+/1;\r\n"
        "       arc=pass (i=1);\r\n       spf=pass (google.com: domain of "
        "ekbang.staf@porong.example.go.id designates 209.85.220.41 as permitted "
        "sender) smtp.mailfrom=ekbang.staf@porong.example.go.id;\r\n"
        "       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) "
        "header.from=porong.example.go.id"
    )

    assert check == SenderCheck(True, ("dkim", "spf", "dmarc"), "authenticated")


@pytest.mark.parametrize(
    "result",
    [
        # Yahoo ends the header with ";"; Zoho writes values in angle brackets.
        f"{TRUSTED}; dkim=pass header.i=@porong.example.go.id header.s=s1;",
        f"{TRUSTED}; spf=pass smtp.mailfrom=<ekbang.staf@porong.example.go.id>",
        # OpenDMARC's header above OpenDKIM's: the pass is aligned already.
        f"{TRUSTED}; dmarc=pass (p=none dis=none) header.from=porong.example.go.id",
    ],
)
def test_real_servers_header_shapes_pass(result: str) -> None:
    # Trial 34: each of these set a genuine staff answer aside as forged.
    check = _check(result)

    assert (check.authentic, check.reason) == (True, "authenticated")


def test_a_dmarc_pass_for_another_domain_does_not_count() -> None:
    check = _check(f"{TRUSTED}; dmarc=pass header.from=evil.example")

    assert check == SenderCheck(False, (), "no aligned DKIM, SPF or DMARC pass")


def test_each_milters_header_of_the_last_hop_is_read() -> None:
    # Trial 35: OpenDMARC's "dmarc=none" (no DMARC record for .go.id) stood
    # above OpenDKIM's pass, and a genuine staff reply was set aside.
    dmarc = f"{TRUSTED}; dmarc=none (p=none dis=none) header.from=porong.example.go.id"
    dkim = f"{TRUSTED}; dkim=pass (2048-bit key) header.d=porong.example.go.id"

    ours = _check(dmarc, dkim, received_after=2)
    # Below our Received header, a header naming our server is the sender's.
    forged = _check(dmarc, dkim, received_after=1)

    assert ours == SenderCheck(True, ("dkim",), "authenticated")
    assert forged == SenderCheck(False, (), "no aligned DKIM, SPF or DMARC pass")


@pytest.mark.parametrize(
    "result",
    [
        # Trial 35: properties another method verified, or none verified.
        f"{TRUSTED}; dkim=pass header.d=evil.example header.from=porong.example.go.id",
        f"{TRUSTED}; spf=pass smtp.mailfrom=evil.example "
        "header.from=porong.example.go.id",
        f"{TRUSTED}; dkim=pass header.d=evil.example header.i=@porong.example.go.id",
        f"{TRUSTED}; dmarc=pass header.from=example.go.id",
    ],
)
def test_only_what_each_method_verified_counts(result: str) -> None:
    check = _check(result)

    assert check == SenderCheck(False, (), "no aligned DKIM, SPF or DMARC pass")
