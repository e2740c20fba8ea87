"""Config redaction: secrets never reach the warehouse, every other knob reaches the hash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warehouse import RunInfo, redact

MARK = "<redacted>"


def _hash(config: dict) -> str:
    run = RunInfo(run_id="r", started_at=datetime(2026, 1, 1, tzinfo=UTC), config=config)
    return run.redacted_config()[1]


def _engine(**kwargs) -> dict:
    return {"applications": [{"name": "llm", "args": {"engine_kwargs": kwargs}}]}


@pytest.mark.parametrize("key", [
    "max_tokens", "max_num_batched_tokens", "tokenizer", "tokenizer_mode", "stop_token_ids",
    "eos_token_id", "max_completion_tokens", "skip_special_tokens", "api_key_env", "author",
])
def test_knobs_that_merely_mention_tokens_or_keys_are_kept(key):
    assert redact({key: 7}) == {key: 7}
    assert _hash(_engine(**{key: 7})) != _hash(_engine(**{key: 8}))


@pytest.mark.parametrize("key", [
    "api_key", "apiKey", "x-api-key", "OPENAI_API_KEY", "access_token", "auth_token",
    "hf_token", "HF_TOKEN", "token", "hfToken", "secret", "client_secret", "password",
    "db_passwd", "passphrase", "private_key", "privateKey", "ssh_private_key", "credential",
    "credentials", "Authorization", "auth", "webhook_url", "webhookUrl", "cookie",
])
def test_secret_keys_keep_their_place_but_lose_their_value(key):
    assert redact({key: "s3cr3t-v4lue", "keep": 1}) == {key: MARK, "keep": 1}


def test_adding_a_secret_changes_the_hash_but_its_value_does_not():
    base = _engine(max_model_len=4096)
    with_key = _engine(max_model_len=4096, api_key="one")
    rotated = _engine(max_model_len=4096, api_key="two")
    assert _hash(base) != _hash(with_key) == _hash(rotated)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://user:pa55@models.example.com/m?rev=1",
     f"https://{MARK}@models.example.com/m?rev=1"),
    ("https://ghp_tok3n@github.com/org/repo/archive/main.zip",
     f"https://{MARK}@github.com/org/repo/archive/main.zip"),
    ("https://h.example.com/hook?token=abc&x=1&api_key=def&sig=ghi",
     f"https://h.example.com/hook?token={MARK}&x=1&api_key={MARK}&sig={MARK}"),
    ("s3://bucket/model", "s3://bucket/model"),
    ("--endpoint=http://u:p@10.0.0.1:9000/x", f"--endpoint=http://{MARK}@10.0.0.1:9000/x"),
])
def test_credentials_inside_url_values_are_removed(url, expected):
    assert redact({"applications": [{"runtime_env": {"working_dir": url}}]}) == {
        "applications": [{"runtime_env": {"working_dir": expected}}]}
    assert redact([url]) == [expected]


def test_nested_secret_values_never_survive_in_the_yaml_text():
    run = RunInfo(
        run_id="r", started_at=datetime(2026, 1, 1, tzinfo=UTC),
        config="applications:\n- name: llm\n  args:\n    tls: {passphrase: hunter2}\n"
               "    notify: {webhook_url: 'https://hooks.slack.com/services/T0/B0/XyZ'}\n"
               "    private_key: |\n      -----BEGIN KEY-----\n      AAAA\n"
               "    model: 'https://bob:b0bpw@hf.example.com/m'\n"
               "    engine_kwargs: {max_tokens: 5, tokenizer: t}\n",
    )
    text, digest = run.redacted_config()
    for secret in ("hunter2", "XyZ", "BEGIN KEY", "b0bpw", "bob:"):
        assert secret not in text
    assert "max_tokens: 5" in text and "tokenizer: t" in text and len(digest) == 64


def test_environment_maps_are_still_dropped_whole():
    assert redact({"runtime_env": {"env_vars": {"HF_TOKEN": "hf_x"}, "pip": ["a"]}}) == {
        "runtime_env": {"pip": ["a"]}}
