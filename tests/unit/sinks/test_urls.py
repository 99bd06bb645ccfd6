"""Sink URL parsing, password redaction and the open_sink factory."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import assume, given

from market_data_pipeline.errors import UsageError
from market_data_pipeline.sinks import open_sink, redact_url
from market_data_pipeline.sinks.postgres import PostgresSink
from market_data_pipeline.sinks.sqlite import SqliteSink
from market_data_pipeline.sinks.urls import parse_sink_url
from market_data_pipeline.urls import mask_urls, scrub


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///mdp.db", "mdp.db"),
        ("sqlite:///data/bars.db", "data/bars.db"),
        ("sqlite:////var/lib/mdp/bars.db", "/var/lib/mdp/bars.db"),
        ("SQLITE:///x.db", "x.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_map_to_paths(url: str, path: str) -> None:
    target = parse_sink_url(url)
    assert (target.backend, target.location) == ("sqlite", path)


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u:p@h:5433/db?sslmode=off"])
def test_postgres_urls_pass_through(url: str) -> None:
    assert parse_sink_url(url).backend == "postgresql"
    assert isinstance(open_sink(url), PostgresSink)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "bars.db", "sqlite:/x.db", "sqlite:///"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        parse_sink_url(url)


def test_unknown_scheme_lists_supported_ones_without_password() -> None:
    with pytest.raises(UsageError) as error:
        open_sink("mysql://root:hunter2@db/bars")
    message = str(error.value)
    assert "sqlite://" in message and "postgresql://" in message and "postgres://" in message
    assert "hunter2" not in message


def test_open_sink_builds_the_backend_named() -> None:
    sink = open_sink("sqlite:///bars.db", transactional=True)
    assert isinstance(sink, SqliteSink)
    assert sink.transactional and sink.path == "bars.db"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),  # libpq: a role name, no secret
        ("postgresql://h/db?user=u&password=secret", "postgresql://h/db?user=u&password=***"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("nats://SECRETTOKEN123@127.0.0.1:4999", "nats://***@127.0.0.1:4999"),
        ("nats://u:p1@a:4222,nats://tok@b:4222", "nats://u:***@a:4222,nats://***@b:4222"),
        ("SECRETTOKEN123@127.0.0.1:4222", "***@127.0.0.1:4222"),
        ("https://h/x?token=abc&x=1", "https://h/x?token=***&x=1"),
        ("wss://h/?access_token=abc;api_key=k", "wss://h/?access_token=***;api_key=***"),
        (
            "https://b.s3/o?X-Amz-Signature=f00&X-Amz-Date=1",
            "https://b.s3/o?X-Amz-Signature=***&X-Amz-Date=1",
        ),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_masked_text_keeps_addresses_that_hold_no_credential() -> None:
    text = "nats://tok@h:1 failed; write to ops@example.com"
    assert mask_urls(text) == "nats://***@h:1 failed; write to ops@example.com"


secret_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1).map(
    lambda s: f"QX{s}"
)
CREDENTIAL_FORMS = [
    "nats://{}@127.0.0.1:4222",
    "nats://user:{}@127.0.0.1:4222",
    "nats://a:4222,nats://{}@b:4222",
    "https://api.example/v1?token={}",
    "https://api.example/v1?x=1&password={}",
    "https://api.example/v1?access_token={}&y=2",
    "redis://{}@127.0.0.1:6379/0",
    "{}@127.0.0.1:4222",
]


@given(secret=secret_chars, form=st.sampled_from(CREDENTIAL_FORMS))
def test_no_credential_form_survives_redaction_or_masking(secret: str, form: str) -> None:
    url = form.format(secret)
    assert secret not in redact_url(url)
    assert secret not in mask_urls(f"cannot connect to {url}: refused")
    assert secret not in scrub(f"server said: bad token {secret}", url)


# The prefix keeps a generated password from matching other parts of the URL by chance.
password_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!$%*", min_size=2).map(
    lambda s: f"QX{s}"
)


@given(password=password_chars)
def test_redacted_urls_never_show_the_password(password: str) -> None:
    url = f"postgresql://user:{password}@db.example:5432/bars?password={password}"
    assert password not in redact_url(url)
    assert password not in scrub(f"FATAL: bad password {password}\nDETAIL: x", url)


def test_scrub_keeps_one_line() -> None:
    assert scrub("\n  first line\nsecond line", "postgresql://h/db") == "first line"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://postgres:pa/ss@127.0.0.1:5432/test",
            "postgresql://postgres:***@127.0.0.1:5432/test",
        ),
        ("postgresql://postgres:s3cret@[::1/test", "postgresql://postgres:***@[::1/test"),
        ("postgresql://postgres:pa#ss@h:5432/test", "postgresql://postgres:***@h:5432/test"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("redis://:pa/ss@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://:s3cret@127.0.0.1:abc/0", "redis://:***@127.0.0.1:abc/0"),
    ],
)
def test_redact_url_handles_malformed_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown


any_password = st.text(min_size=4).filter(lambda s: "\n" not in s and "\r" not in s)
SHAPES = [
    "postgresql://user:{}@db.example:5432/bars",
    "postgres://user:{}@[::1/bars",
    "redis://:{}@127.0.0.1:6379/0",
    "redis://:{}@127.0.0.1:abc/0",
]


@given(password=any_password, shape=st.sampled_from(SHAPES))
def test_no_password_survives_redaction_or_scrubbing(password: str, shape: str) -> None:
    url = shape.format(password)
    masked = shape.format("***")
    message = f"connection to {url} failed: password {password!s} rejected"
    assume(password not in f"{masked} connection to failed: password rejected ***")
    assert password not in redact_url(url)
    assert password not in scrub(message, url)


def _mask_reference(text: str) -> str:
    """mask_urls as two plain patterns, the way it was first written (slow on long texts)."""
    import re

    from market_data_contracts import urls

    text = re.sub(r"\S*@\S*", urls._mask_word, text)
    return urls._QUERY_SECRET.sub(r"\1***", text)


_PIECES = st.sampled_from(
    ["@", "=", ":", "/", "//", " ", "\n", "&", ";", ".", "-", "_", "a", "Z", "9", "é", "\u00a0"]
)
_WORDS = st.sampled_from(
    ["pass", "Token", "key", "sig", "postgresql://", "nats://", "u:pw@h:1", "x=1", "%3D"]
)


@given(st.lists(_PIECES | _WORDS, max_size=40).map("".join))
def test_mask_urls_masks_as_the_plain_patterns_do(text: str) -> None:
    assert mask_urls(text) == _mask_reference(text)
