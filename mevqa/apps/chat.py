"""One browser session of the app: its clip, its conversation, and its questions waiting in line.

Rules (issue 17): a session answers one question at a time, in the order asked; a question asked while
another is answered, or while a new clip is analysed, waits in line and says so in the chat; an answer
is about the clip whose evidence is on screen, and a line in the chat marks where the clip changed.
The :class:`Session` is the one place that holds this; every view of the chat is rendered from it, so
two event handlers writing the chat at once can only show the same conversation.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mevqa.answer.agent import Agent
from mevqa.evidence.builder import Evidence

log = logging.getLogger("mevqa.apps.chat")

NO_CLIP = "No clip analysed yet: upload a video (or a zip of frames), or press **Use the demo clip**."
# The evidence-only backend ends each answer with its name in italics; the app shows it once, above the chat.
_BACKEND_TAIL = re.compile(r"\n\n_[^\n]*_\s*$")


@dataclass
class Entry:
    role: str             # "user" | "assistant"
    content: str
    boundary: bool = False  # a "new clip" line: shown, never sent to the model as conversation


class Session:
    """State of one browser session (kept in ``gr.State``; every handler mutates it under ``lock``).

    A plain class, not a dataclass: Gradio serialises dataclass values of a State into the page config.
    """

    def __init__(self):
        self.evidence: Evidence | None = None
        self.entries: list[Entry] = []
        self.pending: deque[str] = deque()
        self.answering = False                # a handler is answering this session's questions
        self.analysing: str | None = None     # name of the clip being analysed, if any
        self.generation = 0                   # analyses started; an analysis whose number is not current stops
        self.cancelled = -1                   # the generation the user cancelled
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):  # gr.State deep-copies its initial value for each session: a fresh one
        return Session()

    # -- analysis ------------------------------------------------------------------------------------
    def start_analysis(self, name: str) -> int:
        with self.lock:
            self.generation += 1
            self.analysing = name
            return self.generation

    def stopped(self, gen: int) -> bool:
        """Whether the analysis number ``gen`` should stop (cancelled, or a newer clip took over)."""
        return gen != self.generation or gen == self.cancelled

    def cancel(self) -> bool:
        with self.lock:
            if self.analysing is None:
                return False
            self.cancelled = self.generation
            self.analysing = None
            return True

    def finish_analysis(self, gen: int, ev: Evidence | None) -> bool:
        """Record the end of analysis ``gen``; with an Evidence it becomes the clip on screen (a line in
        the chat marks the change). False when a newer analysis or a cancel overtook this one."""
        with self.lock:
            if self.stopped(gen):
                return False
            self.analysing = None
            if ev is not None:
                if self.entries and self.evidence is not None:
                    self.entries.append(Entry("assistant", f"**New clip: {Path(ev.clip).name}.** "
                                                           "Answers below are about this clip.", boundary=True))
                self.evidence = ev
            return True

    # -- questions -----------------------------------------------------------------------------------
    def add_question(self, question: str) -> bool:
        question = (question or "").strip()
        if not question:
            return False
        with self.lock:
            self.pending.append(question)
        return True

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.pending.clear()

    def history(self) -> list[dict]:
        """The conversation about the clip on screen, for the model: entries after the last clip change."""
        start = max((k + 1 for k, e in enumerate(self.entries) if e.boundary), default=0)
        return [{"role": e.role, "content": e.content} for e in self.entries[start:] if e.content]

    def messages(self) -> list[dict]:
        """What the Chatbot shows: the conversation, then the questions waiting in line."""
        with self.lock:
            msgs = [{"role": e.role, "content": e.content or "…"} for e in self.entries]
            if self.pending:
                for q in self.pending:
                    msgs.append({"role": "user", "content": q})
                why = (f"the new clip ({self.analysing}) is still being analysed" if self.analysing
                       else "the question before is being answered")
                n = len(self.pending)
                msgs.append({"role": "assistant",
                             "content": f"_Waiting ({n} question{'s' if n > 1 else ''} in line): {why}._"})
        return msgs


def answer_pending(agent: Agent, session: Session) -> Iterator[list[dict]]:
    """Answer the session's waiting questions one at a time, yielding the chat after each change.

    Only one call per session answers (the others just show the chat); answering pauses while a new clip
    is analysed, and the analysis handler calls this again when it ends.
    """
    with session.lock:
        if session.answering:
            mine = False
        else:
            mine = session.answering = True
    if not mine:
        yield session.messages()
        return
    try:
        while True:
            with session.lock:
                if not session.pending or session.analysing:
                    session.answering = False
                    break
                question = session.pending.popleft()
                ev, before = session.evidence, session.history()
                q, a = Entry("user", question), Entry("assistant", "")
                session.entries += [q, a]  # placed now, so a clip change lands after this answer
            yield session.messages()
            if ev is None:
                a.content = NO_CLIP
                continue
            try:
                for text in agent.stream(ev, question, before):
                    a.content = _BACKEND_TAIL.sub("", text)
                    yield session.messages()
            except Exception:  # noqa: BLE001 - the chat keeps working; the log has the traceback
                log.exception("answering failed")
                a.content = "Sorry, I could not answer that (an internal error; the server log has details)."
    finally:
        with session.lock:
            session.answering = False
    yield session.messages()


def text_of(content) -> str:
    """Plain text of a Chatbot message's content (a string, or Gradio's list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return " ".join(text_of(c) for c in content if c is not None).strip()
    return "" if content is None else str(content)


def backend_text(agent: Agent) -> str:
    text = f"**Answers come from:** {agent.backend_name}"
    if agent.notice:
        text += f"  \n**Notice:** {agent.notice}"
    return text
