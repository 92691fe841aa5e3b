"""A lecture hall on one server, driven at the protocol level: N sessions upload and click on Segment (not a test).

No browsers: each session is one websocket to `/_stcore/stream` speaking Streamlit's own protobuf messages, as
the frontend does — a `rerun_script` BackMsg with the widget states, a `file_urls_request` then an HTTP PUT to
`/_stcore/upload_file/<session>/<file_id>` for the upload, and each click as the prompt widget's trigger
({"event": "prompt", "value": {"kind": "point", "xy": [x, y], "positive": true}} under its "events" trigger id,
with the widget's fragment id, exactly as tests/widgets.send_trigger and components/prompt_canvas.py define it).
All sessions run in one asyncio process, so the client costs next to nothing beside the server.

Each session opens Segment, picks "Upload", uploads its own image (a different one per session, or one shared
image with --shared-image, so that a full-size SAM embeds it once), then clicks a point of its own every
`--period` seconds for `--duration` seconds. Before the first click it says that it has the image, as the prompt
widget does once it shows it: the answers to clicks then carry the masks only. A click's latency is the time from
sending its BackMsg to the `script_finished` ForwardMsg of the fragment run that carries the new mask layer. Checked on every answer: the
widget's data echoes this session's own prompts, its last click included, and carries a mask layer (no lost
mask), and names this session's image; at the end, the image each session's widget was given is its own
(correlation with every session's image: its own is the best). Also counted: the kilobytes of each click's answer.

Starts its own `make run`-like server on 127.0.0.1 (tests/browser/server.serve) unless --url is given, with the
environment `make run` gives it (the Makefile's SERVE_ENV, plus --env), and runs each level of --sessions against it in turn
(the server stays warm between levels). Bounded: every wait has a timeout and the whole run a deadline.

    .venv/bin/python -m bench.bench_hall [--sessions 10 25 50] [--profile tiny|default] [--shared-image]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import re
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets
from PIL import Image
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

from tests import corpus

CANVAS = "vfm_prompt_canvas"
PAGE = "segment"
_DONE = {
    ForwardMsg.FINISHED_SUCCESSFULLY,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
    ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
}
_DECODER = re.compile(r"mask decoder took (\d+) ms")


class ProtocolError(RuntimeError):
    """The server answered something a browser would show as a failure."""


@dataclass
class Run:
    """What one script run sent: its elements (with their fragment ids) and texts, in order."""

    elements: list = field(default_factory=list)  # (Element proto, fragment id)
    texts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bytes: int = 0  # received over the websocket, all messages of the run

    def find(self, kind: str, label: str = "", name: str = ""):
        """The last element of type `kind` (with this label or component name) and its fragment id."""
        for element, fragment in reversed(self.elements):
            if element.WhichOneof("type") != kind:
                continue
            proto = getattr(element, kind)
            if label and proto.label != label or name and proto.component_name != name:
                continue
            return proto, fragment
        raise ProtocolError(f"no {kind} {label or name!r} in the answer: {self.texts[-3:]} {self.errors}")


class Session:
    """One browser tab's worth of protocol: a websocket, this session's widget states, one script run at a time."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.xsrf = generate_xsrf_token_string()
        self.session_id = ""
        self.pages: dict[str, str] = {}  # URL path → page script hash
        self.states: dict[str, WidgetState] = {}  # the widgets this session has set: sent with every rerun
        self._run = Run()
        self._finished: asyncio.Queue[int] = asyncio.Queue()
        self._file_urls: asyncio.Future | None = None
        self._ws = self._reader = None

    async def open(self) -> None:
        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        self._ws = await websockets.connect(
            ws_url,
            subprotocols=["streamlit", self.xsrf],
            additional_headers={"Cookie": f"_streamlit_xsrf={self.xsrf}"},
            origin=self.url,
            max_size=None,
            open_timeout=self.timeout,
        )
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        async for raw in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self._run.bytes += len(raw)
            self._receive(msg)

    def _receive(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
        elif kind == "navigation":  # the router's pages: a rerun names its page by hash, as the frontend does
            self.pages = {page.url_pathname: page.page_script_hash for page in msg.navigation.app_pages}
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "script_finished":
            self._finished.put_nowait(msg.script_finished)
        elif kind == "file_urls_response" and self._file_urls is not None and not self._file_urls.done():
            self._file_urls.set_result(msg.file_urls_response)

    def _element(self, element, fragment_id: str) -> None:
        self._run.elements.append((element, fragment_id))
        kind = element.WhichOneof("type")
        if kind == "markdown":
            self._run.texts.append(element.markdown.body)
        elif kind == "exception":
            self._run.errors.append(f"{element.exception.type}: {element.exception.message}")
        elif kind == "alert" and element.alert.format == Alert.ERROR:  # warnings (the random-weights banner) are normal
            self._run.errors.append(element.alert.body)

    async def rerun(self, *extra: WidgetState, fragment_id: str = "") -> Run:
        """Send a rerun as the frontend does and wait for its `script_finished` (an early-for-rerun end is
        followed by the real run). Raises ProtocolError when the run shows an error."""
        self._run, self._finished = Run(), asyncio.Queue()
        back = BackMsg()
        client = back.rerun_script
        client.page_script_hash = self.pages.get(PAGE, "")
        client.page_name = "" if client.page_script_hash else PAGE  # the first run: the page's URL, as a bookmark
        client.fragment_id = fragment_id
        client.widget_states.widgets.extend([*self.states.values(), *extra])
        await self._ws.send(back.SerializeToString())
        while (status := await asyncio.wait_for(self._finished.get(), self.timeout)) not in _DONE:
            pass
        if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR or self._run.errors:
            raise ProtocolError(f"the run ended with an error: {self._run.errors}")
        return self._run

    def set_state(self, widget_id: str, **value) -> WidgetState:
        state = WidgetState(id=widget_id, **value)
        self.states[widget_id] = state
        return state

    async def upload(self, widget_id: str, name: str, data: bytes) -> Run:
        """Upload one file as the frontend does (ask for its URL, PUT it), then rerun with the uploader's state."""
        self._file_urls = asyncio.get_running_loop().create_future()
        back = BackMsg()
        back.file_urls_request.request_id = uuid.uuid4().hex
        back.file_urls_request.session_id = self.session_id
        back.file_urls_request.file_names.append(name)
        await self._ws.send(back.SerializeToString())
        (urls,) = (await asyncio.wait_for(self._file_urls, self.timeout)).file_urls
        await asyncio.to_thread(self._put, urls.upload_url, name, data)
        state = WidgetState(id=widget_id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = urls.file_id, name, len(data)
        info.file_urls.CopyFrom(urls)
        self.states[widget_id] = state
        return await self.rerun()

    def _put(self, path: str, name: str, data: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: image/png\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(self.url + path, data=body, method="PUT")
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        request.add_header("X-Xsrftoken", self.xsrf)
        request.add_header("Cookie", f"_streamlit_xsrf={self.xsrf}")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status != 204:
                raise ProtocolError(f"upload answered HTTP {response.status}")


# ---- one student ------------------------------------------------------------------------------------------
@dataclass
class Student:
    """One session's plan (its image, its clicks) and what came back."""

    n: int
    image: Image.Image
    clicks: list[tuple[float, float]]
    latencies_ms: list[float] = field(default_factory=list)
    decoder_ms: list[float] = field(default_factory=list)
    kilobytes: list[float] = field(default_factory=list)  # received per click
    errors: list[str] = field(default_factory=list)
    last_echo: list[list[float]] = field(default_factory=list)  # the widget's prompts after the last answer
    background: str = ""  # the image the widget was given (data URL, sent once), the masks in a layer over it
    image_id: str = ""  # what the server calls that image; every answer must name it
    component_key: str = ""
    sent: int = 0  # clicks answered
    first_sent: float = 0.0  # monotonic seconds
    last_answer: float = 0.0


async def open_segment(session: Session, student: Student) -> tuple[str, str]:
    """Open Segment, choose "Upload", upload this student's image: the prompt widget's id and fragment id. Then,
    as the widget does once it shows the image, say so (its "shown" state, a fragment rerun): later answers leave
    the image out."""
    await session.open()
    run = await session.rerun()
    radio, _ = run.find("radio", label="Image from")
    run = await session.rerun(session.set_state(radio.id, string_value="Upload"))
    uploader, _ = run.find("file_uploader", label="Image")
    run = await session.upload(uploader.id, f"student_{student.n:02d}.png", corpus.encode(student.image))
    canvas, fragment = run.find("bidi_component", name=CANVAS)
    if not fragment:
        raise ProtocolError("the prompt widget is not inside a fragment: every click would rerun the whole page")
    data = json.loads(canvas.json)
    student.background, student.image_id = data["image"], data["imageId"]
    run = await session.rerun(
        session.set_state(canvas.id, json_value=json.dumps({"shown": data["imageId"]})), fragment_id=fragment
    )
    if json.loads(run.find("bidi_component", name=CANVAS)[0].json)["image"]:
        raise ProtocolError("the image was sent again after the widget said it has it")
    return canvas.id, fragment


async def click(session: Session, widget_id: str, fragment: str, xy: tuple[float, float]) -> tuple[float, Run]:
    """One point prompt, sent as the widget sends it: the milliseconds to `script_finished`, and the run."""
    trigger = WidgetState(id=_make_trigger_id(widget_id, "events"))
    trigger.json_trigger_value = json.dumps([{"event": "prompt", "value": {"kind": "point", "xy": list(xy)}}])
    start = time.perf_counter()
    run = await session.rerun(trigger, fragment_id=fragment)
    return (time.perf_counter() - start) * 1e3, run


def check_answer(run: Run, student: Student, done: int) -> dict:
    """The widget's data after click number `done`: it must echo exactly this student's first `done` clicks, carry
    a mask layer, and name this student's image (sent again or not)."""
    data = json.loads(run.find("bidi_component", name=CANVAS)[0].json)
    echo = [p["xy"] for p in data["prompts"]]
    mine = student.clicks[:done]
    if data["seq"] != done or len(echo) != done or not np.allclose(echo, mine, atol=2e-3) or not data["layer"]:
        raise ProtocolError(f"session {student.n} after click {done}: seq {data['seq']}, prompts {echo[-2:]}")
    if data["imageId"] != student.image_id:
        raise ProtocolError(f"session {student.n} after click {done}: image {data['imageId']}, not its own")
    student.background = data["image"] or student.background
    return data


class Barrier:
    """Released once every session is open (or has failed): the clicks start together, spread over a period."""

    def __init__(self, parties: int) -> None:
        self.left, self.event, self.at = parties, asyncio.Event(), 0.0

    def arrive(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.event.is_set():
            self.at = time.monotonic()
            self.event.set()


async def student_session(url: str, student: Student, barrier: Barrier, phase: float, args) -> None:
    """Open Segment, upload, then click: each click `period` s after the last one was sent, never before its
    answer came (a student waits for the mask), so a slow server gets fewer clicks, not a burst."""
    session = Session(url, args.setup_timeout)
    arrived = False
    try:
        widget_id, fragment = await open_segment(session, student)
        student.component_key = widget_id.rsplit("-", 1)[-1]
        session.timeout, arrived = args.timeout, True
        barrier.arrive()
        await barrier.event.wait()
        next_at = barrier.at + phase
        stop_at = next_at + args.duration  # bounded in time as in count: a slow server gets fewer clicks
        for i, xy in enumerate(student.clicks):
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() >= stop_at:
                break
            next_at = time.monotonic() + args.period
            student.first_sent = student.first_sent or time.monotonic()
            ms, run = await click(session, widget_id, fragment, xy)
            student.last_answer = time.monotonic()
            student.latencies_ms.append(ms)
            student.sent = i + 1
            decoder = [int(m[1]) for text in run.texts if (m := _DECODER.search(text))]
            student.decoder_ms.extend(decoder[-1:])
            student.kilobytes.append(run.bytes / 1e3)
            data = check_answer(run, student, i + 1)
            student.last_echo = [p["xy"] for p in data["prompts"]]
    except Exception as exc:  # every failure is counted, none stops the others
        student.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if not arrived:
            barrier.arrive()
        await session.close()


# ---- a hall -------------------------------------------------------------------------------------------------
def make_students(n: int, clicks: int, shared_image: bool, side: int) -> list[Student]:
    students = []
    for i in range(n):
        rng = np.random.default_rng(1000 + i)
        image = corpus.rgb(side, side * 3 // 4, seed=0 if shared_image else 1000 + i)
        students.append(Student(i, image, [tuple(rng.uniform(0.1, 0.9, 2).round(3)) for _ in range(clicks)]))
    return students


def _pixels(url_or_image, size: tuple[int, int]) -> np.ndarray:
    image = url_or_image
    if isinstance(image, str):
        image = Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1])))
    gray = np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR), np.float32)
    return (gray - gray.mean()) / (gray.std() + 1e-6)


def leaks(students: list[Student]) -> list[str]:
    """Sessions whose widget was given an image that is not its own (best correlation among all sessions' images)."""
    size = (128, 96)
    images = np.stack([_pixels(s.image, size).ravel() for s in students])
    found = []
    for s in students:
        if not s.background:
            continue
        scores = images @ _pixels(s.background, size).ravel() / images.shape[1]
        if not np.isclose(scores[s.n], scores.max()):
            found.append(f"session {s.n} shows image {int(np.argmax(scores))}'s pixels")
    return found


async def hall(url: str, n: int, args: argparse.Namespace) -> dict:
    clicks = args.clicks or max(1, round(args.duration / args.period))
    students = make_students(n, clicks, args.shared_image, args.side)
    if args.shared_image:  # the one image is embedded before the hall starts, as a lecturer's "Whole working set"
        (warm,) = make_students(1, 1, True, args.side)
        await student_session(url, warm, Barrier(1), 0.0, args)
        if warm.errors:
            raise ProtocolError(f"warm-up session failed: {warm.errors}")
    barrier = Barrier(n)
    cpu_at_start = asyncio.create_task(_cpu_when(barrier.event))
    sessions = (student_session(url, s, barrier, args.period * s.n / n, args) for s in students)
    await asyncio.wait_for(asyncio.gather(*sessions), args.deadline)
    start, end = await cpu_at_start, server_cpu_s()
    return summary(students, end - start if start is not None and end is not None else None)


def server_cpu_s() -> float | None:
    """CPU seconds (user + system, all threads) of the server this process started; None without one (--url) or
    without /proc. Load from other jobs stretches wall times, not this."""
    total = None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # a child of this process: the server
            total = (total or 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _cpu_when(event: asyncio.Event) -> float | None:
    await event.wait()
    return server_cpu_s()


def summary(students: list[Student], server_cpu: float | None = None) -> dict:
    latencies = np.array([ms for s in students for ms in s.latencies_ms])
    decoder = np.array([ms for s in students for ms in s.decoder_ms])
    kilobytes = np.array([kb for s in students for kb in s.kilobytes])
    clicking = [s for s in students if s.first_sent]
    span = max(s.last_answer for s in clicking) - min(s.first_sent for s in clicking) if clicking else 0.0
    pct = lambda a, q: round(float(np.percentile(a, q)), 1) if len(a) else None  # noqa: E731
    keys = [s.component_key for s in students if s.component_key]
    return {
        "sessions": len(students),
        "clicks_max": sum(len(s.clicks) for s in students),
        "clicks_answered": len(latencies),
        "click_phase_s": round(span, 1),
        "clicks_per_s": round(len(latencies) / span, 2) if span else None,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "max_ms": pct(latencies, 100),
        "decoder_p50_ms": pct(decoder, 50),
        "kB_per_click_p50": pct(kilobytes, 50),
        "server_cpu_ms_per_click": round(1e3 * server_cpu / len(latencies), 1)
        if server_cpu and len(latencies)
        else None,
        "errors": [f"session {s.n}: {e}" for s in students for e in s.errors],
        "lost_masks": [s.n for s in students if not s.sent or len(s.last_echo) != s.sent],
        "leaks": leaks(students),
        "distinct_widgets": len(set(keys)),
        "load_average": [round(v, 1) for v in os.getloadavg()],  # other jobs on the machine, when it ended
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[50])
    parser.add_argument("--period", type=float, default=2.0, help="seconds between a session's clicks")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of clicking per session")
    parser.add_argument("--clicks", type=int, help="most clicks per session (default: duration / period)")
    parser.add_argument("--profile", default="tiny", help="VFM_LENS_PROFILE of the server: tiny or default")
    parser.add_argument("--shared-image", action="store_true", help="one image for all (full-size SAM: embed once)")
    parser.add_argument("--side", type=int, default=64, help="uploaded image width in pixels")
    parser.add_argument("--env", nargs="*", default=[], help="KEY=VALUE for the server beyond MAKE_RUN_ENV")
    parser.add_argument("--url", help="an already running server instead of starting one")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one answer may take")
    parser.add_argument("--setup-timeout", type=float, default=600.0, help="seconds the first embedding may take")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds one level may take in all")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    from tests.browser.server import log_problems, make_run_env, serve

    env = {} if args.url else make_run_env() | dict(item.split("=", 1) for item in args.env)  # --url: not ours
    if args.url:
        results = asyncio.run(_levels(args.url, args))
    else:
        log: list[str] = []
        print("server environment:", " ".join(f"{k}={v}" for k, v in env.items()), flush=True)
        with serve(startup_s=180, log=log, VFM_LENS_PROFILE=args.profile, **env) as url:
            results = asyncio.run(_levels(url, args))
        problems = log_problems(log)
        print(f"server log: {len(problems)} warnings or errors", *problems[:20], sep="\n")
    if args.json:
        with open(args.json, "w") as f:
            server = [f"{k}={v}" for k, v in env.items()]
            machine = {"machine": platform.machine(), "load_average": os.getloadavg(), "env": server}
            json.dump({"profile": args.profile, **machine, "levels": results}, f, indent=1)
    bad = any(r["errors"] or r["lost_masks"] or r["leaks"] for r in results)
    raise SystemExit(1 if bad else 0)


async def _levels(url: str, args: argparse.Namespace) -> list[dict]:
    results = []
    for n in args.sessions:
        result = await hall(url, n, args)
        results.append(result)
        shown = {k: v for k, v in result.items() if k not in ("errors",)}
        print(json.dumps(shown), *result["errors"][:5], sep="\n", flush=True)
    return results


if __name__ == "__main__":
    main()
