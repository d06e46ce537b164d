"""deepstream-app's per-stream frame rate report, computed from frames that left the last stage.

deepstream-app prints, every `perf-measurement-interval-sec`, one line with the frame rate of
each stream over the last interval and, in brackets, since its first frame; a header line names
the columns every 20 reports:

    **PERF:  FPS 0 (Avg)	FPS 1 (Avg)
    **PERF:  24.81 (24.60)	25.02 (24.93)
"""

from __future__ import annotations

from dataclasses import dataclass, field

HEADER_EVERY = 20


@dataclass
class _Stream:
    total: int = 0
    window: int = 0
    first_at: float | None = None


@dataclass
class PerfMeter:
    """Counts frames per stream; `report(now)` gives (fps now, fps average) and opens a window."""

    streams: list[str]
    started_at: float
    _counts: dict[str, _Stream] = field(init=False)
    _window_start: float = field(init=False)

    def __post_init__(self) -> None:
        self._counts = {s: _Stream() for s in self.streams}
        self._window_start = self.started_at

    def add(self, stream: str, now: float, frames: int = 1) -> None:
        s = self._counts.get(stream)
        if s is None:  # a stream the plan did not name (multi-URI expansion): report it too
            s = self._counts[stream] = _Stream()
            self.streams.append(stream)
        if s.first_at is None:
            # From the start of the window the stream's first frame fell in, so the first
            # average is not inflated by a burst right after start-up.
            s.first_at = self._window_start
        s.total += frames
        s.window += frames

    def report(self, now: float) -> list[tuple[float, float]]:
        span = max(now - self._window_start, 1e-9)
        rates: list[tuple[float, float]] = []
        for name in self.streams:
            s = self._counts[name]
            current = s.window / span
            average = s.total / max(now - s.first_at, 1e-9) if s.first_at is not None else 0.0
            rates.append((current, average))
            s.window = 0
        self._window_start = now
        return rates

    def total(self, stream: str) -> int:
        return self._counts[stream].total


def header_line(streams: int) -> str:
    return "**PERF:  " + "".join(f"FPS {i} (Avg)\t" for i in range(streams))


def perf_line(rates: list[tuple[float, float]]) -> str:
    return "**PERF:  " + "".join(f"{now:.2f} ({avg:.2f})\t" for now, avg in rates)


@dataclass
class PerfPrinter:
    """Turns reports into lines, with the header every HEADER_EVERY reports as deepstream-app."""

    printed: int = 0

    def lines(self, rates: list[tuple[float, float]]) -> list[str]:
        out: list[str] = []
        if self.printed % HEADER_EVERY == 0:
            out.append(header_line(len(rates)))
        self.printed += 1
        out.append(perf_line(rates))
        return out
