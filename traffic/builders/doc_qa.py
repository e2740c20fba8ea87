"""Questions over a few long documents: the traffic a prefix cache exists for.

A support assistant or a RAG service over a small set of manuals sends the same long
document ahead of many different questions. Here each SQuAD 2.0 article becomes one
document (its leading paragraphs, up to :data:`DOC_CHARS` characters, about 1,100
tokens), placed in the system message so every question about it shares the same
long prompt prefix; the question is the user turn. A replica that keeps the
document's KV blocks answers the next question about it after a prefill of only the
question; one that evicted them recomputes the whole document.

Answers are graded like ``qa`` (reference match, groundedness against the document,
"I don't know" for SQuAD's unanswerable questions).
"""

from __future__ import annotations

from pathlib import Path

from traffic.builders.qa import squad_task
from traffic.builders.sources import SQUAD, read_json, require
from traffic.builders.tasks import Task, register_tasks

__all__ = ["DOC_CHARS", "doc_qa_tasks", "document_prompt"]

DOC_CHARS = 4500  # ~1,100 tokens: the system turn, a question and an answer fit in 2,048
MAX_TOKENS = 48


def document_prompt(document: str) -> str:
    """The system turn shared by every question about ``document``."""
    return (
        "Answer the user's question using only the document below. Reply with a short "
        "phrase. If the document does not contain the answer, reply exactly: I don't know."
        f"\n\nDocument:\n{document}"
    )


@register_tasks("doc_qa")
def doc_qa_tasks(data_dir: Path) -> list[Task]:
    """One task per question on the paragraphs that make up its article's document."""
    tasks: list[Task] = []
    for article in read_json(require(data_dir, SQUAD))["data"]:
        paragraphs = article["paragraphs"]
        kept = paragraphs[:1]  # a first paragraph longer than DOC_CHARS stays whole
        for paragraph in paragraphs[1:]:
            if sum(len(p["context"]) + 2 for p in kept) + len(paragraph["context"]) > DOC_CHARS:
                break
            kept.append(paragraph)
        document = "\n\n".join(p["context"] for p in kept)
        system = {"role": "system", "content": document_prompt(document)}
        tasks += [
            squad_task("doc_qa", qa, [system, {"role": "user", "content": qa["question"]}],
                       document, MAX_TOKENS)
            for paragraph in kept for qa in paragraph["qas"]
        ]
    return tasks
