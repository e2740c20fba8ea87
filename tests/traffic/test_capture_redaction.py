"""Capture redaction: secrets of every common kind leave no trace in a record — in any
string of the body, in a dict key, in the tenant or the request id — and custom patterns
add to the defaults. Plain prompts pass through byte for byte.

Fake secrets are assembled at run time, so this file holds none a scanner would flag.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from traffic.capture import CaptureMiddleware, CaptureWriter, Redactor
from traffic.loader import load_capture_dir

R = "[REDACTED]"
STRING = {"type": "string"}


def fake(prefix: str, body: str) -> str:
    return prefix + body


# one fake secret of each kind the audit found missing or already covered
SECRETS = {
    "huggingface": fake("hf_", "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH"),
    "github": fake("ghp_", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"),
    "github_fine_grained": fake("github_pat_", "11ABCDEFG0123456789_" + "a" * 59),
    "google": fake("AIza", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6q"),
    "slack": fake("xoxb-", "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    "jwt": fake(
        "eyJ",
        "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "openai_short": fake("sk-", "abc123xyz"),
    "openai_long": fake("sk-", "live-abcdefghijklmnopqrstuvwx"),
    "anthropic": fake("sk-ant-", "api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    "aws": fake("AKIA", "IOSFODNN7EXAMPLE"),
    "stripe": fake("sk_live_", "4eC39HqLyjWDarjtT1zdp7dc"),
    "email": "alice@example.com",
    "email_idn": "josé@bücher.de",
    "email_unicode": "用户@例子.广告",
}


def scrub_text(text: str, redactor: Redactor | None = None) -> str:
    record = {"request_id": "r", "tenant_id": "t", "body": {"content": text}}
    return (redactor or Redactor())(record)["body"]["content"]


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_of_secret_is_redacted(kind):
    secret = SECRETS[kind]
    out = scrub_text(f"please use {secret} for the call")
    assert secret not in out and R in out
    assert out.startswith("please use ") and out.endswith(" for the call")


@pytest.mark.parametrize(
    "text, kept",
    [
        ("password=hunter2", "password="),
        ("my password: correct-horse-battery", "my password: "),
        ('config {"api_key": "q8Zr1xWv"}', 'config {"api_key": "'),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: "),
        ("https://bob:s3cr3tpass@db.internal/x", "https://bob:"),
        ("curl -H 'x-api-key: 0123456789abcdef0123'", "curl -H 'x-api-key: "),
        ("refresh_token=Zm9vYmFyYmF6cXV4", "refresh_token="),
    ],
)
def test_keyword_assignments_lose_their_value(text, kept):
    out = scrub_text(text)
    assert out.startswith(kept) and R in out
    secret = text[len(kept) :].split('"')[0].split("'")[0].split("@")[0]
    assert secret not in out


def test_a_private_key_block_is_redacted_whole():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nq3k\n-----END RSA PRIVATE KEY-----"
    out = scrub_text(f"here:\n{key}\nthanks")
    assert "MIIEowIBAAKCAQEA7" not in out and "q3k" not in out
    assert out == f"here:\n{R}\nthanks"


def test_plain_prompts_pass_unchanged():
    texts = [
        "Extract the name and year. Reply with JSON only: {\"name\": string, \"year\": integer}",
        "Context: The Normans (Norman: Nourmands) gave their name to Normandy.\n\nQ: Who?",
        "Calculate the factorial of the number 5; set max_tokens to 64; my task-12345 ticket",
        "Compute 12 * 7 and end with the final number. #### 84",
        "The token count was 512 and the secret ingredient is love.",
    ]
    for text in texts:
        assert scrub_text(text) == text


def test_secrets_as_keys_and_under_secret_keys_are_redacted():
    key_secret = SECRETS["openai_long"]
    record = {
        "request_id": "r",
        "tenant_id": "t",
        "body": {
            "metadata": {key_secret: 1, "password": "hunter2", "client_secret": 1234},
            "max_tokens": 64,
            "tools": [{"function": {"parameters": {"properties": {"password": STRING}}}}],
        },
    }
    out = Redactor()(record)
    text = json.dumps(out)
    assert key_secret not in text and "hunter2" not in text and "1234" not in text
    assert out["body"]["metadata"]["password"] == R
    assert out["body"]["max_tokens"] == 64  # a number under a harmless key stays a number
    schema = out["body"]["tools"][0]["function"]["parameters"]["properties"]
    assert schema == {"password": STRING}  # a schema naming a field is no secret


def test_two_secret_keys_do_not_collide():
    a, b = SECRETS["github"], SECRETS["huggingface"]
    out = Redactor()({"request_id": "r", "tenant_id": "t", "body": {a: 1, b: 2}})
    assert sorted(out["body"].values()) == [1, 2]
    assert all(R in key for key in out["body"])


def test_custom_patterns_add_to_the_defaults():
    redactor = Redactor(patterns=[r"ACME-\d{6}"])
    out = scrub_text(f"ticket ACME-123456 from alice@example.com key {SECRETS['github']}", redactor)
    assert out == f"ticket {R} from {R} key {R}"


def test_the_request_id_and_tenant_are_replaced_when_they_hold_a_secret():
    secret = SECRETS["openai_long"]
    out = Redactor()({"request_id": secret, "tenant_id": "alice@example.com", "body": {}})
    assert secret not in out["request_id"] and out["request_id"].startswith("redacted-")
    assert out["tenant_id"] == R
    again = Redactor()({"request_id": secret, "tenant_id": "acme", "body": {}})
    assert again["request_id"] != out["request_id"]  # unique, so no duplicate in the file
    assert again["tenant_id"] == "acme"


async def ok(scope, receive, send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def post(writer: CaptureWriter, content: str, headers: dict[str, str]) -> None:
    async def run() -> None:
        transport = httpx.ASGITransport(app=CaptureMiddleware(ok, writer=writer))
        async with httpx.AsyncClient(transport=transport, base_url="http://capture.test") as c:
            body = {"model": "m", "messages": [{"role": "user", "content": content}]}
            assert (await c.post("/v1/chat/completions", json=body, headers=headers)).is_success

    asyncio.run(run())


def test_x_request_id_holding_a_secret_never_reaches_the_file(tmp_path):
    secret = SECRETS["github"]
    writer = CaptureWriter(tmp_path, flush_interval=0.01, redactor=Redactor()).start()
    post(writer, "hi", {"x-request-id": f"req-{secret}", "x-tenant-id": "acme"})
    writer.close()
    text = "".join(p.read_text() for p in tmp_path.glob("capture-*"))
    assert secret not in text
    (record,) = load_capture_dir(tmp_path).records
    assert record.request_id.startswith("redacted-") and record.tenant_id == "acme"


def test_a_writer_redacts_by_default(tmp_path):
    secret = SECRETS["slack"]
    writer = CaptureWriter(tmp_path, flush_interval=0.01).start()
    post(writer, f"token {secret} and mail bob@example.org", {"x-tenant-id": "acme"})
    writer.close()
    (record,) = load_capture_dir(tmp_path).records
    assert record.body["messages"][0]["content"] == f"token {R} and mail {R}"
