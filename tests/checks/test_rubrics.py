"""Each rubric on real cases (BFCL, SQuAD v2, GSM8K, JSON), right and wrong answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.rubrics import ANSWER_ONLY, CONDITIONAL, RUBRIC_NAMES, RUBRICS, SpanView
from checks.rubrics.reference_match import token_f1


def score(rubric: str, row: dict) -> float | None:
    fields = {k: v for k, v in row.items() if k != "span_id"}
    return RUBRICS[rubric](SpanView.from_row(**fields))


def test_registry_holds_the_five_rubrics():
    assert set(RUBRIC_NAMES) == set(RUBRICS) == {
        "json_adherence", "tool_call_correctness", "groundedness", "reference_match",
        "completion"}


# --- json_adherence ------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "pop": {"type": "integer"}},
          "required": ["city", "pop"]}
RESPONSE_FORMAT = {"messages": [], "response_format": {
    "type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"city": "Paris", "pop": 2100000}', 1.0),
        ('```json\n{"city": "Paris", "pop": 2100000}\n```', 1.0),
        ('{"city": "Paris", "pop": "2.1M"}', 0.0),
        ('{"city": "Paris"}', 0.0),
        ("Sure! Here is the JSON: {\"city\": \"Paris\"}", 0.0),
        (None, 0.0),
    ],
)
def test_json_adherence_from_response_format(make_span, output, expected):
    row = make_span(request=RESPONSE_FORMAT, output_text=output)
    assert score("json_adherence", row) == expected


def test_json_adherence_from_expect_and_not_applicable(make_span):
    row = make_span(output_text='{"city": "Oslo", "pop": 700000}', expect={"json_schema": SCHEMA})
    assert score("json_adherence", row) == 1.0
    assert score("json_adherence", make_span(output_text="{}")) is None


# --- tool_call_correctness (BFCL) ----------------------------------------------------

def _bfcl_span(make_span, bfcl, case_id, calls):
    question, answer = bfcl[case_id]
    return make_span(request=bfcl_request(question), expect=bfcl_expect(answer),
                     tool_calls=calls, finish_reason="tool_calls", output_text=None)


def bfcl_request(question):
    return {"messages": question["question"][0],
            "tools": [{"type": "function", "function": f} for f in question["function"]]}


def bfcl_expect(answer):
    return {"tool_calls": [{"name": n, "arguments": a}
                           for call in answer["ground_truth"] for n, a in call.items()]}


@pytest.mark.parametrize(
    ("case_id", "calls", "expected"),
    [
        # simple_python_0: calculate_triangle_area(base=10, height=5[, unit="units"])
        ("simple_python_0", [{"name": "calculate_triangle_area",
                              "arguments": json.dumps({"base": 10, "height": 5})}], 1.0),
        ("simple_python_0", [{"name": "calculate_triangle_area",
                              "arguments": {"base": 10.0, "height": 5, "unit": " UNITS "}}], 1.0),
        # wrong value for height: 2 of 3 argument checks pass
        ("simple_python_0", [{"name": "calculate_triangle_area",
                              "arguments": {"base": 10, "height": 6}}], 0.5 + 0.5 * 2 / 3),
        # a string where the schema wants an integer: arguments invalid
        ("simple_python_0", [{"name": "calculate_triangle_area",
                              "arguments": {"base": "10", "height": 5}}], 0.5),
        ("simple_python_0", [{"name": "calculate_circle_area", "arguments": {"radius": 1}}], 0.0),
        ("simple_python_0", [], 0.0),
        # multiple_0 picks triangle_properties.get among two tools; optional flags may be absent
        ("multiple_0", [{"name": "triangle_properties.get",
                         "arguments": {"side1": 5, "side2": 4, "side3": 3}}], 1.0),
        ("multiple_0", [{"name": "circle_properties.get", "arguments": {"radius": 5.0}}], 0.0),
        # multiple_2: country_info.capital(country="Brazil"), string compare ignores case
        ("multiple_2", [{"name": "country_info.capital", "arguments": {"country": "brazil"}}], 1.0),
        # right call plus an extra one: half credit for the span
        ("multiple_2", [{"name": "country_info.capital", "arguments": {"country": "Brazil"}},
                        {"name": "country_info.capital", "arguments": {"country": "Peru"}}], 0.5),
    ],
)
def test_tool_call_correctness_on_bfcl(make_span, bfcl, case_id, calls, expected):
    assert score("tool_call_correctness", _bfcl_span(make_span, bfcl, case_id, calls)) == \
        pytest.approx(expected)


def test_tool_call_correctness_without_expected_call(make_span, bfcl):
    question, _ = bfcl["simple_python_1"]
    no_call = {"tool_calls": []}
    assert score("tool_call_correctness", make_span(request=bfcl_request(question),
                                                     expect=no_call)) == 1.0
    called = make_span(request=bfcl_request(question), expect=no_call,
                       tool_calls=[{"name": "math.factorial", "arguments": {"number": 5}}])
    assert score("tool_call_correctness", called) == 0.0


def test_tool_call_correctness_well_formedness_only_without_expect(make_span, bfcl):
    request = bfcl_request(bfcl["simple_python_1"][0])
    good = [{"name": "math.factorial", "arguments": {"number": 5}}]
    bad = [{"name": "math.factorial", "arguments": {"number": "five"}}]
    assert score("tool_call_correctness", make_span(request=request, tool_calls=good)) == 1.0
    assert score("tool_call_correctness", make_span(request=request, tool_calls=bad)) == 0.0
    assert score("tool_call_correctness", make_span()) is None


# --- groundedness (SQuAD v2) ---------------------------------------------------------

def _squad_span(make_span, qa, answer):
    return make_span(output_text=answer, expect={"context": qa["context"],
                                                 "answerable": not qa["is_impossible"]})


def test_groundedness_on_squad(make_span, squad):
    answerable = next(q for q in squad if not q["is_impossible"])
    impossible = next(q for q in squad if q["is_impossible"])
    right = answerable["answers"][0]["text"]  # "France"
    assert score("groundedness", _squad_span(make_span, answerable, f"It is in {right}.")) == 1.0
    invented = "Normandy is located in Portugal near Lisbon"
    assert score("groundedness", _squad_span(make_span, answerable, invented)) == \
        pytest.approx(1 / 5)  # only "normandy" is in the passage
    assert score("groundedness", _squad_span(make_span, answerable,
                                             "The context does not say.")) == 0.0
    refusal = "I cannot answer that from the passage; it is not mentioned."
    assert score("groundedness", _squad_span(make_span, impossible, refusal)) == 1.0
    guess = impossible["plausible_answers"][0]["text"]
    assert score("groundedness", _squad_span(make_span, impossible, guess)) == 0.0


def test_groundedness_scores_failures_zero_and_skips_without_context(make_span, squad):
    qa = squad[0]
    failed = make_span(status="timeout", output_text=None, finish_reason=None,
                       expect={"context": qa["context"]})
    assert score("groundedness", failed) == 0.0
    assert score("groundedness", make_span()) is None


# --- reference_match (GSM8K numbers, SQuAD text) -------------------------------------

def test_reference_match_on_gsm8k(make_span, gsm8k):
    first = gsm8k[0]  # Janet's ducks: 18
    reference = first["answer"].rsplit("####", 1)[1].strip()
    right = "She sells 16 - 3 - 4 = 9 eggs, so she makes 9 * 2 = $18 every day."
    wrong = "She sells 9 eggs at $2, so 16 - 3 - 4 = 9 ... she makes $1,800."
    assert score("reference_match", make_span(output_text=right,
                                              expect={"reference": reference})) == 1.0
    assert score("reference_match", make_span(output_text=wrong,
                                              expect={"reference": reference})) == 0.0
    # the raw GSM8K answer with its '#### 18' tail works as a reference too
    assert score("reference_match", make_span(output_text="18",
                                              expect={"reference": first["answer"]})) == 1.0


def test_reference_match_on_squad(make_span, squad):
    qa = squad[1]  # "When were the Normans in Normandy?" → "10th and 11th centuries"
    reference = qa["answers"][0]["text"]
    exact = make_span(output_text="The 10th and 11th centuries.", expect={"reference": reference})
    partial = make_span(output_text="In the 10th century", expect={"reference": reference})
    assert score("reference_match", exact) == 1.0
    assert score("reference_match", partial) == pytest.approx(token_f1("In the 10th century",
                                                                       reference))
    assert 0 < score("reference_match", partial) < 1
    assert score("reference_match", make_span(output_text="Rollo",
                                              expect={"reference": reference})) == 0.0


def test_reference_match_empty_reference_wants_refusal(make_span):
    assert score("reference_match", make_span(output_text="I don't know.",
                                              expect={"reference": ""})) == 1.0
    assert score("reference_match", make_span(output_text="France",
                                              expect={"reference": ""})) == 0.0


# --- completion and failures ---------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "finish", "expected"),
    [("ok", "stop", 1.0), ("ok", "tool_calls", 1.0), ("ok", "length", 0.0),
     ("timeout", None, 0.0), ("http_error", None, 0.0), ("ok", None, 0.0)],
)
def test_completion(make_span, status, finish, expected):
    assert score("completion", make_span(status=status, finish_reason=finish)) == expected


@pytest.mark.parametrize("rubric", ["json_adherence", "tool_call_correctness", "groundedness",
                                    "reference_match"])
def test_every_applicable_rubric_scores_a_serving_failure_zero(make_span, rubric):
    row = make_span(status="http_error", output_text='{"city": "Oslo", "pop": 1}',
                    finish_reason=None,
                    request={"messages": [], "tools": [{"type": "function", "function": {
                        "name": "f", "parameters": {"type": "object"}}}]},
                    expect={"json_schema": SCHEMA, "reference": "Oslo", "context": "Oslo",
                            "tool_calls": []})
    assert score(rubric, row) == 0.0


# --- the registry is the one list of rubrics -------------------------------------------


def test_conditional_rubrics_do_not_apply_to_a_plain_chat_span(make_span):
    assert CONDITIONAL and CONDITIONAL < set(RUBRICS)
    for status in ("ok", "timeout"):
        plain = make_span(status=status,
                          request={"messages": [{"role": "user", "content": "hi"}]})
        assert {name: score(name, plain) for name in CONDITIONAL} == dict.fromkeys(CONDITIONAL)


def test_answer_only_rubrics_score_the_same_without_the_parsed_fields(make_span, bfcl):
    assert ANSWER_ONLY and ANSWER_ONLY.isdisjoint(CONDITIONAL)
    question, answer = bfcl["simple_python_1"]
    for row in (make_span(), make_span(status="timeout", output_text=None),
                make_span(request=bfcl_request(question), expect=bfcl_expect(answer),
                          finish_reason="length")):
        bare = SpanView(status=row["status"], finish_reason=row["finish_reason"],
                        output_text=row["output_text"])
        for name in ANSWER_ONLY:
            assert RUBRICS[name](bare) == score(name, row), name


def test_every_registered_rubric_has_its_column_in_the_staging_sql_and_its_docs_row():
    root = Path(__file__).resolve().parents[2]
    staging = (root / "checks" / "sql" / "_span_quality.sql").read_text()
    docs = (root / "docs" / "checks.md").read_text()
    assert [n for n in RUBRIC_NAMES if f"rubric = '{n}'" not in staging] == []
    assert [n for n in RUBRIC_NAMES if f"| `{n}` |" not in docs] == []
