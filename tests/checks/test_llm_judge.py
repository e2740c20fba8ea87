"""The optional LLM judge against a fake OpenAI server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from checks.rubrics import SpanView
from checks.rubrics.llm_judge import JudgeConfig, LLMJudge

SECRET = "sk-test-never-logged"


class FakeOpenAI(BaseHTTPRequestHandler):
    seen: list[dict] = []
    reply = "0.75"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": body})
        payload = json.dumps({"choices": [{"message": {"role": "assistant",
                                                       "content": FakeOpenAI.reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeOpenAI.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_scores_through_the_endpoint_and_keeps_the_key_secret(fake_openai, caplog):
    caplog.set_level(logging.DEBUG)
    config = JudgeConfig(enabled=True, base_url=fake_openai, model="grader",
                         api_key_env="JUDGE_KEY", prompt="Q={question} A={answer} R={reference}")
    with httpx.Client() as client:
        judge = LLMJudge.from_config(config, environ={"JUDGE_KEY": SECRET}, client=client)
        span = SpanView(output_text="Paris", expect={"reference": "Paris"},
                        request={"messages": [{"role": "user", "content": "Capital of France?"}]})
        assert judge(span) == 0.75
        FakeOpenAI.reply = "Score: 7"  # out of range: clipped
        assert judge(span) == 1.0
        FakeOpenAI.reply = "no idea"
        assert judge(span) is None
        assert judge(SpanView(status="timeout")) == 0.0
    first = FakeOpenAI.seen[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["auth"] == f"Bearer {SECRET}"
    assert first["body"]["model"] == "grader"
    assert first["body"]["messages"][0]["content"] == "Q=Capital of France? A=Paris R=Paris"
    assert SECRET not in repr(judge) and SECRET not in caplog.text
    assert SECRET not in config.model_dump_json()


def test_judge_is_off_by_default_and_unreachable_endpoint_gives_null():
    assert JudgeConfig().enabled is False
    config = JudgeConfig(enabled=True, base_url="http://127.0.0.1:9/v1", timeout_s=1)
    with httpx.Client(timeout=1) as client:
        assert LLMJudge.from_config(config, environ={}, client=client)(SpanView()) is None
