"""A log file that progress bars write into line by line.

tqdm redraws a bar in place with carriage returns: in a log file that is one line that grows by a bar every few
seconds, thousands of updates long and unreadable with ``less`` or ``grep``. :class:`LineLog` wraps the rule's log
file and turns each redraw into a line of its own, so a long job's log reads as one dated progress line (items
done, rate, ETA) per update; the workflow's scripts set tqdm's update interval for jobs to 30 s
(``TQDM_MININTERVAL``, workflow/scripts/_common.py), so an hour of encoding adds about 120 lines.
"""

from __future__ import annotations

import io


class LineLog(io.TextIOBase):
    """A text stream over ``raw`` (an open text file) that writes every ``\\r`` as a line break, once: a ``\\r``
    right after a line break (the usual start of a redraw) is dropped, so no blank lines appear."""

    def __init__(self, raw):
        self.raw = raw
        self._at_line_start = True

    def write(self, s: str) -> int:
        parts = s.split("\r")
        text = parts[0]
        for part in parts[1:]:  # each \r: a new line, unless one just began
            at_line_start = text.endswith("\n") if text else self._at_line_start
            if not at_line_start:
                text += "\n"
            text += part
        if text:
            self.raw.write(text)
            self._at_line_start = text.endswith("\n")
        return len(s)

    @property
    def encoding(self):
        return self.raw.encoding

    @property
    def errors(self):
        return self.raw.errors

    @property
    def buffer(self):
        return self.raw.buffer

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()
        super().close()
