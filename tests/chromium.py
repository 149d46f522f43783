"""Debian's headless Chromium (/usr/bin/chromium), driven over the DevTools protocol on a pipe.

`--remote-debugging-pipe`: the browser reads protocol messages on its fd 3 and writes its answers and events on
fd 4 (chromium's content/browser/devtools/devtools_pipe_handler.cc: kReadFD = 3, kWriteFD = 4), each message JSON
ended by a NUL byte (the "asciiz" mode, the default, as chromedriver's PipeBuilder names it; seen with Debian's
Chromium 156). No port, no WebSocket, no package: a page's test needs only this and the standard library.

The flags are those this machine's browser tests use (no background networking: the closed network would refuse
its connections, and nothing but the page must ask for anything).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio")
WIDTH, HEIGHT = 900, 1200  # the page's viewport, CSS pixels


class ProtocolError(Exception):
    pass


class Chromium:
    """One browser with one page, attached in a flat session; every event kept in `events`, in order."""

    def __init__(self, profile: Path, timeout: float = 30):
        shutil.rmtree(profile, ignore_errors=True)
        profile.mkdir(parents=True)
        self.timeout = timeout
        commands, self._to_browser = os.pipe()
        self._from_browser, answers = os.pipe()
        # the browser's ends above fd 9, so that putting them on 3 and 4 cannot overwrite one with the other
        commands, answers = (_above_9(fd) for fd in (commands, answers))
        self.stderr = profile / "stderr.txt"
        with open(self.stderr, "wb") as stderr:
            # bash (dash takes one-digit fds only) puts the pipes on fds 3 and 4, then becomes the browser
            self.process = subprocess.Popen(
                ["bash", "-c", f'exec "$@" 3<&{commands} 4>&{answers} {commands}<&- {answers}>&-', "bash",
                 CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                pass_fds=(commands, answers), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        os.close(commands)
        os.close(answers)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None
        target = self.call("Target.createTarget", url="about:blank", session=None)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True, session=None)["sessionId"]

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.call("Browser.close", session=None)
        except (ProtocolError, OSError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def call(self, method: str, session: str | None | bool = True, **params: Any) -> dict:
        """Send a command (to the page's session unless `session` is None: the browser) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is True:
            session = self.session
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ProtocolError(f"{method}: {answer['error']}")
                return answer["result"]

    def wait_for(self, event: str) -> dict:
        """The first `event` not yet waited for, reading until it comes."""
        seen = len(self.events)
        for message in self.events:
            if message["method"] == event and not message.get("_waited"):
                message["_waited"] = True
                return message
        while True:
            self._read()
            for message in self.events[seen:]:
                if message["method"] == event:
                    message["_waited"] = True
                    return message
            seen = len(self.events)

    def _read(self) -> dict:
        """The next message; events are kept in `events` as they pass."""
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise ProtocolError(f"no answer from chromium in {self.timeout} s: {self.stderr.read_text()[-2000:]}")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ProtocolError(f"chromium closed its pipe: {self.stderr.read_text()[-2000:]}")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    # what a page's test asks of it

    def open(self, path: Path) -> None:
        """Load the file as a user opening it does, recording its console, errors and requests."""
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def page_clip(self) -> dict:
        width, height = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        return {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}

    def screenshot(self, clip: dict, speed: bool = False) -> bytes:
        """A PNG of `clip` (CSS pixels of the document), beyond the viewport too; `speed`: compressed less, quicker
        to decode (png_pixels)."""
        data = self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True,
                         optimizeForSpeed=speed)["data"]
        return base64.b64decode(data)

    def pdf(self) -> bytes:
        data = self.call("Page.printToPDF", preferCSSPageSize=True, printBackground=True)["data"]
        return base64.b64decode(data)


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


def _unfilter(kind: int, line: bytearray, previous: bytearray, channels: int) -> None:
    for i in range(len(line)):
        left = line[i - channels] if i >= channels else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        else:  # 4, Paeth
            corner = previous[i - channels] if i >= channels else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF


def png_pixels(png: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGB(A) pixels, row by row, of an 8-bit RGB or RGBA PNG (what Chromium writes; PNG
    specification, 2nd ed., 7.3 and 9: filter types 0-4 per scanline)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), f"PNG depth {depth} colour type {color}"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    channels = 3 if color == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    pixels = []
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        if kind == 2:  # up: all of them in a screenshot optimized for speed
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind:
            _unfilter(kind, line, previous, channels)
        pixels += [tuple(line[i:i + 3]) for i in range(0, stride, channels)]
        previous = line
    return width, height, pixels
