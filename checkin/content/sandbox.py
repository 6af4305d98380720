"""A Jinja2 sandbox that also bounds how long a template runs and how much it writes.

Jinja's sandbox stops a template from reaching Python internals, but not from spending the
worker's CPU (``{% for i in range(100000) %}{% for j in range(100000) %}``) or its memory
(``{{ 'x' * 100000000 }}``). Templates are written by admins, and a runaway one must cost one
failed message, not a stalled dispatch loop. So:

- time: while a template renders, a trace function watches the lines of template code only
  (frames Jinja compiled from a template) and stops the render once it has used
  ``time_limit`` seconds of CPU. The garbage collector's passes are not counted: a full
  collection in a large process runs in whichever thread allocated last and can take most of a
  second, and a template must not fail (or a start-up be refused) for the heap's size.
  Python code outside templates runs untraced. A template with
  nothing in it that can repeat (no loop, macro, call block or block, and no other template
  included, imported or extended) runs each of its lines once, so it renders untraced: the
  tracer was most of the cost of rendering a reply (27 against 7 us).
- size: the output is streamed and stopped at ``max_output`` characters; operations that can
  build a large value in one step (``*``, ``**``, ``%`` and ``str.format`` with a huge width,
  string methods and filters given a huge number, ``replace``) are refused *before* they run,
  when their result would exceed the limit. Concatenation with ``~`` grows a value only by what
  it joins, so the output bound catches it.

Both raise ``RenderLimitExceeded``; ``checkin.content.render`` turns it into a TemplateError.
"""

from __future__ import annotations

import gc
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from jinja2 import Template, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

# A whole SMS is at most a few hundred characters and an HTML email a few tens of KB; these
# leave ample room for real templates and none for runaway ones.
DEFAULT_TIME_LIMIT_S = 1.0
DEFAULT_MAX_OUTPUT = 200_000

# Widths and precisions in %-format and str.format specs: "%0100000000d", "{:>100000000}".
_FORMAT_WIDTHS = re.compile(r"%[-#0 +]*(\d+)|\{[^{}]*:[^{}]*?(\d+)")


# Template code that can run a line more than once: loops; macros, call blocks and blocks (each
# can call itself); and other templates brought in, which may hold any of these.
_REPEATS = (
    nodes.For,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Block,
    nodes.Include,
    nodes.Extends,
    nodes.Import,
    nodes.FromImport,
)


class RenderLimitExceeded(Exception):
    """A template ran too long or produced too much; the message says which."""


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def _widest_format(spec: str) -> int:
    return max((int(a or b) for a, b in _FORMAT_WIDTHS.findall(spec)), default=0)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """``ImmutableSandboxedEnvironment`` plus the size checks above; render with ``render``."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(
        self,
        *args: Any,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
        max_output: int = DEFAULT_MAX_OUTPUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.time_limit = time_limit
        self.max_output = max_output
        self.filters = {name: self._bounded_filter(name, f) for name, f in self.filters.items()}
        # Template name -> whether its every line runs at most once (see ``_parse``).
        self._straight: dict[str, bool] = {}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Jinja's parse, noting whether the template named ``name`` is straight-line. Noted
        before the template is built, so a reloaded template never renders under its old
        note; and a name once seen with a loop stays traced for the life of the process, so
        an old template object still in use after its file lost its loops is traced too."""
        tree = super()._parse(source, name, filename)
        if name is not None:
            straight = next(tree.find_all(_REPEATS), None) is None
            self._straight[name] = straight and self._straight.get(name, True)
        return tree

    # -- size checks before an operation runs ---------------------------------------------

    def _too_big(self, what: str) -> RenderLimitExceeded:
        return RenderLimitExceeded(f"{what} would exceed the {self.max_output:,}-character output limit")

    def _check_number(self, value: Any, what: str) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > self.max_output:
            raise self._too_big(f"{what} with {value:,}")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and isinstance(n, int) and size * n > self.max_output:
                    raise self._too_big(f"repeating a value {n:,} times")
        elif operator == "**":
            # Exponentiation runs in C where no time check can interrupt it.
            if isinstance(right, int) and right > 1000:
                raise RenderLimitExceeded(f"raising to the power {right:,} is not allowed in templates")
        elif operator == "%" and isinstance(left, str) and _widest_format(left) > self.max_output:
            raise self._too_big("a format width")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            __self._check_number(value, "a call")
        bound_to = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(bound_to, str) and _widest_format(bound_to) > __self.max_output:
            raise __self._too_big("a format width")
        return super().call(__context, __obj, *args, **kwargs)

    def _bounded_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def bounded(*args: Any, **kwargs: Any) -> Any:
            values = [a for a in (*args, *kwargs.values()) if not isinstance(a, (Context,))]
            for value in values:
                self._check_number(value, f"the {name} filter")
            if name == "format" and values and _widest_format(str(values[0])) > self.max_output:
                raise self._too_big("a format width")
            if name == "replace" and len(values) >= 3 and all(isinstance(v, str) for v in values[:3]):
                text, old, new = (str(v) for v in values[:3])
                grown = len(text) + (text.count(old) if old else len(text) + 1) * len(new)
                if grown > self.max_output:
                    raise self._too_big("the replace filter")
            result = func(*args, **kwargs)
            if isinstance(result, str) and len(result) > self.max_output:
                raise self._too_big(f"the {name} filter")
            return result

        # Jinja passes the context, eval context or environment first to filters marked so.
        bounded.__dict__.update(getattr(func, "__dict__", {}))
        return bounded

    # -- time and output while rendering -----------------------------------------------------

    def render(self, template: Template, context: Mapping[str, Any]) -> str:
        """Render ``template`` with ``context`` within the time and output limits."""
        if template.name is not None and self._straight.get(template.name, False):
            return self._collect(template.generate(dict(context)))
        # CPU time of this thread, not wall time: a loaded machine or a descheduled thread must
        # not fail a template that is merely slow to get the processor.
        deadline = time.thread_time() + self.time_limit
        limit = self.time_limit
        me = threading.get_ident()
        # CPU seconds this thread spent collecting garbage during the render; [1] marks a pass
        # under way (its start time), 0.0 when none is.
        collecting = [0.0, 0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if threading.get_ident() != me:
                return
            if phase == "start":
                collecting[1] = time.thread_time()
            elif collecting[1]:
                collecting[0] += time.thread_time() - collecting[1]
                collecting[1] = 0.0

        ticks = [0]

        def in_template(frame: FrameType, event: str, arg: Any) -> Any:
            ticks[0] += 1
            # Reading the thread's CPU clock is a system call: look every 64 lines.
            if ticks[0] & 63 == 0 and time.thread_time() - collecting[0] > deadline:
                raise RenderLimitExceeded(f"rendering took more than the {limit:g} s CPU limit")
            return in_template

        def on_call(frame: FrameType, event: str, arg: Any) -> Any:
            if "__jinja_template__" in frame.f_globals:
                return in_template(frame, event, arg)
            return None

        previous = sys.gettrace()
        gc.callbacks.append(on_gc)
        sys.settrace(on_call)
        try:
            return self._collect(template.generate(dict(context)))
        finally:
            sys.settrace(previous)
            gc.callbacks.remove(on_gc)

    def _collect(self, chunks: Iterable[str]) -> str:
        out: list[str] = []
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > self.max_output:
                raise RenderLimitExceeded(f"the output exceeded the {self.max_output:,}-character limit")
            out.append(chunk)
        return "".join(out)
