"""rpra_agent.core.security: every log record is scrubbed once, when it is created."""

import logging

import httpx
import pytest

from rpra_agent.core.security import install_log_redaction, redact, register_secret

KEY = "local-key-4f9a2b"  # a bearer key that no pattern would recognise


@pytest.fixture(autouse=True)
def _installed():
    install_log_redaction([KEY])


def test_registered_and_recognisable_secrets_are_masked():
    assert redact(f"key {KEY} and sk-abcdefghijklmnop1234 at http://u:hunter2@h/x") == (
        "key [REDACTED] and [REDACTED] at http://u:***@h/x"
    )
    register_secret("abc")  # too short to register: it would mask ordinary words
    assert redact("abcdef") == "abcdef"


def test_third_party_records_with_object_arguments_are_scrubbed(caplog):
    caplog.set_level(logging.INFO)
    url = httpx.URL("http://rpra:pw-secret-77@127.0.0.1:9/v1/chat/completions")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", 200, "OK")
    assert "pw-secret-77" not in caplog.text and "rpra:***@127.0.0.1" in caplog.text


def test_tuple_arguments_keep_their_shape_for_formatters_that_unpack_them(caplog):
    uvicorn_logging = pytest.importorskip("uvicorn.logging")
    formatter = uvicorn_logging.AccessFormatter(
        '%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    )
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/v1/models?api_key={KEY}", "1.1", 200),
        None,
    )
    assert isinstance(record.args, tuple) and len(record.args) == 5
    line = formatter.format(record)
    assert KEY not in line and "GET /v1/models?api_key=[REDACTED]" in line


def test_tracebacks_are_scrubbed(caplog):
    caplog.set_level(logging.ERROR)
    try:
        raise ConnectionError(f"cannot reach http://admin:hunter2pw@db:5432 with token {KEY}")
    except ConnectionError:
        logging.getLogger("some.library").exception("request failed")
    assert "ConnectionError" in caplog.text
    assert "hunter2pw" not in caplog.text and KEY not in caplog.text


def test_ordinary_records_are_left_alone(caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("rpra_agent.x").info("route=%s p_ok=%.3f", "small", 0.5)
    (record,) = caplog.records
    assert record.args == ("small", 0.5) and record.getMessage() == "route=small p_ok=0.500"


def test_installing_twice_wraps_the_factory_once():
    factory = logging.getLogRecordFactory()
    install_log_redaction()
    assert logging.getLogRecordFactory() is factory
