"""Tests of HTML body conversion and sanitising."""

from __future__ import annotations

from mailbot.htmltext import html_to_text, sanitise_html


def test_html_to_text_keeps_lists_and_drops_scripts() -> None:
    html = (
        "<html><head><style>p {color: red}</style><script>x()</script></head>"
        "<body><p>Jalan <b>rusak</b> &amp; berlubang.</p>"
        "<ul><li>RT 03</li><li>RW 02</li></ul><br><br><br><br><p>Terima kasih</p>"
        "</body></html>"
    )

    text = html_to_text(html)

    assert text == "Jalan rusak & berlubang.\n\n  * RT 03\n  * RW 02\n\nTerima kasih"


def test_html_to_text_keeps_link_addresses_and_does_not_indent_gmail_divs() -> None:
    html = (
        '<div dir="ltr"><div>Banjir: <a href="https://drive.google.com/file/d/1A/v">'
        'video banjir</a>.</div><div><a href="https://example.com">'
        'https://example.com</a> <a href="mailto:rt03@example.com">rt03@example.com'
        '</a> <a href="#atas">atas</a> <a href="javascript:alert(1)">klik</a> '
        '<a href="https://id.wikipedia.org/wiki/Porong_(kota)">wiki</a></div></div>'
    )

    text = html_to_text(html)

    assert text == (
        "Banjir: video banjir <https://drive.google.com/file/d/1A/v>.\n"
        "https://example.com rt03@example.com atas klik "
        "wiki <https://id.wikipedia.org/wiki/Porong_(kota)>"
    )


def test_html_to_text_of_empty_or_nul_html() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p>a\x00b</p>") == "ab"


def test_sanitise_html_removes_active_and_remote_content() -> None:
    html = (
        '<p onclick="steal()" style="x">Halo</p><script>alert(1)</script>'
        '<img src="https://tracker.example.net/o.gif" alt="t">'
        '<img src="cid:foto1"><iframe src="https://x.example"></iframe>'
        '<form action="https://x.example"><input name="nik"></form>'
        '<a href="javascript:alert(1)">a</a><a href="https://lapor.go.id">lapor</a>'
    )

    cleaned = sanitise_html(html)

    assert cleaned == (
        '<p>Halo</p><img alt="t"><img src="cid:foto1">'
        '<a rel="noopener noreferrer">a</a>'
        '<a href="https://lapor.go.id" rel="noopener noreferrer">lapor</a>'
    )


def test_sanitise_html_keeps_embedded_images_only() -> None:
    html = '<img src="data:image/png;base64,iVBO"><img src="data:text/html,x">'

    cleaned = sanitise_html(html)

    assert cleaned == '<img src="data:image/png;base64,iVBO"><img>'


def test_html_to_text_survives_nesting_too_deep_for_lxml() -> None:
    html = (
        "<div>" * 5000 + "Jalan &amp; <b>rusak</b><style>p {}</style>" + "</div>" * 5000
    )

    text = html_to_text(html)

    assert text == "Jalan &  rusak"


def test_html_to_text_ignores_xml_declarations() -> None:
    html = "<?xml version='1.0' encoding='utf-8'?><?xml version='1.0'?><p>Halo</p>"

    text = html_to_text(html)

    assert text == "Halo"


def test_lone_surrogates_and_nul_do_not_break_either_function() -> None:
    html = "<p>a\ud800b\x00c</p>"

    assert html_to_text(html) == "a\ufffdbc"
    assert sanitise_html(html) == "<p>a\ufffdbc</p>"
