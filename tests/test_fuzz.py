"""Property-based fuzzing of WS frames and REST bodies against the real service.

Whatever arrives (wrong types, huge or empty values, NUL, lone surrogates,
right-to-left marks, emoji, deep nesting, binary frames, invalid UTF-8), the
service answers with a documented error `code` and no 5xx; the socket stays
open (a following ping gets its pong), and what is stored changes only when a
request was accepted.

Hypothesis runs on a worker thread and submits each case to the test's event
loop, where the service runs: the loop is never blocked. `FUZZ_EXAMPLES`
(default 100) sets the cases per property; `FUZZ_EXAMPLES=2000 make test
PYTEST_ARGS="tests/test_fuzz.py -s"` is the long run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import HTTP_ERROR_CODES
from tests.conftest import WS, Service

DEFAULT_EXAMPLES = 100
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", str(DEFAULT_EXAMPLES)))
PROTOCOL = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
# The rows of docs/protocol.md's table of codes, and the generic HTTP ones it names.
DOCUMENTED_CODES = frozenset(
    re.findall(r"^\| `([a-z_]+)` \|", PROTOCOL.read_text(), re.MULTILINE)
) | frozenset(HTTP_ERROR_CODES.values())
TERMINAL = {"turn.done", "turn.cancelled", "turn.error"}


# Strategies: values a client could send


EDGE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",  # a lone surrogate: not encodable as UTF-8
        "\u202eevil\u202c",  # right-to-left override
        "\u200f\u05e9\u05dc\u05d5\u05dd",
        "👩‍👩‍👧‍👦🏳️‍🌈",
        "\ufeff",
        "\U0010ffff",
        "e\u0301" * 50,
        "<script>alert(1)</script>",
        "$where",
        "{'$gt': ''}",
        "../../etc/passwd",
    ]
)
TEXT = st.one_of(EDGE_TEXT, st.text(max_size=40), st.integers(0, 300_000).map(lambda n: "x" * n))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(TEXT, EDGE_TEXT), inner, max_size=4)
    ),
    max_leaves=12,
)
DEEP = st.integers(1, 5000).flatmap(
    lambda depth: st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])
)
FRAME_TYPES = st.sampled_from(
    ["turn.start", "turn.cancel", "turn.resume", "ping", "auth", "turn.explode", ""]
)
FIELDS = st.sampled_from(
    ["turn_id", "conversation_id", "content", "model", "after_seq", "token", "type", "$set"]
)
IDS = st.one_of(st.uuids().map(str), st.from_regex(r"[A-Za-z0-9_.:-]{1,70}", fullmatch=True), TEXT)


@st.composite
def frame_like(draw: st.DrawFn) -> dict[str, Any]:
    """An object that looks like a frame: a known (or unknown) type, fields of any type."""
    frame: dict[str, Any] = {"type": draw(st.one_of(FRAME_TYPES, JSON_VALUES))}
    for name in draw(st.lists(FIELDS, max_size=5, unique=True)):
        frame[name] = draw(st.one_of(IDS, JSON_VALUES) if name.endswith("id") else JSON_VALUES)
    return frame


def encode(value: Any) -> str:
    """JSON text, NaN, Infinity and lone surrogates included (all of them invalid JSON)."""
    return json.dumps(value, allow_nan=True, ensure_ascii=True)


WS_TEXT = st.one_of(
    frame_like().map(encode),
    JSON_VALUES.map(encode),
    DEEP,
    TEXT.filter(lambda t: "\ud800" not in t),
)
WS_MESSAGES = st.one_of(
    WS_TEXT.map(lambda text: ("text", text)),
    st.binary(max_size=200).map(lambda data: ("binary", data)),
)
BODIES = st.one_of(
    frame_like().map(lambda f: encode({k: v for k, v in f.items() if k != "type"}).encode()),
    JSON_VALUES.map(lambda v: encode(v).encode()),
    DEEP.map(str.encode),
    st.binary(max_size=300),
    st.integers(200_000, 300_000).map(lambda n: b'{"title": "' + b"x" * n + b'"}'),
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-16",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ]
)


# The harness


def run_cases(case: Callable[..., Awaitable[None]], *strategies: Any) -> Awaitable[int]:
    """Run Hypothesis on a worker thread; each case runs on this (the service's) event loop."""
    loop = asyncio.get_running_loop()
    count = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        # The default profile (CI) draws the same cases every run: a suite that never
        # flakes. A long run (FUZZ_EXAMPLES raised) explores at random.
        derandomize=EXAMPLES <= DEFAULT_EXAMPLES,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.tuples(*strategies))
    def property_holds(drawn: tuple[Any, ...]) -> None:
        nonlocal count
        count += 1
        asyncio.run_coroutine_threadsafe(case(*drawn), loop).result(timeout=60)

    def run() -> int:
        property_holds()
        return count

    return asyncio.to_thread(run)


async def snapshot(service: Service) -> dict[str, list[dict[str, Any]]]:
    db = service.db
    return {
        name: await db[name].find({}).sort("_id", 1).to_list()
        for name in sorted(await db.list_collection_names())
    }


def assert_documented_error(code: Any, where: str) -> None:
    assert code in DOCUMENTED_CODES, f"{where}: undocumented code {code!r}"


@pytest.fixture
async def fuzzed(env: dict[str, str], fake: Any) -> Any:
    """The service with flood and per-user limits out of the way (they are tested elsewhere)
    and no titles (a title written later would look like a change made by a refused request)."""
    env.update(WS_FRAMES_PER_SECOND="100000", WS_FRAME_BURST="10000", CHAT_TITLES="off")
    env.update(TURNS_PER_MINUTE="0", MAX_TURNS_PER_USER="0", MAX_CONNECTIONS_PER_USER="0")
    service = Service(env, fake)
    await service.start()
    yield service
    await service.close()


# WebSocket frames


async def exchange(ws: WS, kind: str, data: str | bytes) -> list[dict[str, Any]]:
    """Send one message and a ping; the answers up to that ping's pong (and to the end of any
    turn the message started)."""
    if kind == "binary":
        assert isinstance(data, bytes)
        await ws.raw.send_bytes(data)
    else:
        assert isinstance(data, str)
        await ws.raw.send_str(data)
    await ws.send({"type": "ping"})
    try:
        sent_ping = kind == "text" and json.loads(data).get("type") == "ping"
    except (ValueError, AttributeError, RecursionError):
        sent_ping = False
    pongs_due, running, answers = 1 + sent_ping, set(), []
    while pongs_due or running:
        frame = await ws.recv()
        answers.append(frame)
        if frame["type"] == "pong":
            pongs_due -= 1
        elif frame["type"] == "error" and sent_ping:
            # A "ping" the service refuses (over the frame limit, a field too many, JSON
            # that only Python's parser takes) is answered by that error, not a pong.
            pongs_due -= 1
            sent_ping = False
        elif frame["type"] == "turn.started":
            running.add(frame["turn_id"])
        elif frame["type"] in TERMINAL:
            running.discard(frame["turn_id"])
    return answers


async def test_fuzzed_frames_get_documented_errors_and_the_socket_stays_open(
    fuzzed: Service,
) -> None:
    ws = await fuzzed.ws()
    before = await snapshot(fuzzed)

    async def case(message: tuple[str, str | bytes]) -> None:
        nonlocal before
        answers = await exchange(ws, *message)
        errors = [a for a in answers if a["type"] == "error"]
        for error in errors:
            assert_documented_error(error["code"], f"frame {message!r:.200}")
            assert error["code"] != "internal", answers
        if any(a["type"] == "turn.started" for a in answers):
            before = await snapshot(fuzzed)  # accepted: a turn was stored
        else:
            assert await snapshot(fuzzed) == before, (
                f"a refused frame changed data: {message!r:.300}"
            )

    cases = await run_cases(case, WS_MESSAGES)
    print(f"\nfuzz: {cases} WS messages on one socket")
    assert not ws.raw.closed
    await ws.close()


async def test_invalid_utf8_text_frames_close_only_their_socket(fuzzed: Service) -> None:
    async def case(data: bytes) -> None:
        ws = await fuzzed.ws()
        await ws.raw.send_frame(data, aiohttp.WSMsgType.TEXT)
        message = await ws.raw.receive(timeout=10)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        assert ws.raw.close_code == 1007  # invalid frame payload data
        other = await fuzzed.ws()  # the service is unharmed
        await other.send({"type": "ping"})
        assert await other.recv() == {"type": "pong"}
        await other.close()

    invalid_utf8 = st.binary(min_size=1, max_size=50).filter(lambda b: not _is_utf8(b))
    cases = await run_cases(case, invalid_utf8)
    print(f"\nfuzz: {cases} invalid UTF-8 text frames")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# REST bodies, paths, queries and headers


async def check_reply(response: aiohttp.ClientResponse, what: str) -> bool:
    """No 5xx; an error is problem+json with a documented code. True when accepted."""
    assert response.status < 500, (what, response.status, await response.text())
    if response.status < 400:
        return True
    assert response.content_type == "application/problem+json", what
    assert_documented_error((await response.json(content_type=None))["code"], what)
    return False


async def test_fuzzed_rest_requests_get_documented_errors_and_change_nothing_refused(
    fuzzed: Service,
) -> None:
    http, headers = fuzzed.http, fuzzed.headers()
    created = await http.post("/api/conversations", json={"title": "kept"}, headers=headers)
    conversation_id = (await created.json())["id"]
    before = await snapshot(fuzzed)
    targets = st.sampled_from(
        [
            ("POST", "/api/conversations"),
            ("PATCH", f"/api/conversations/{conversation_id}"),
            ("POST", "/api/turns"),
            ("POST", "/auth/dev-token"),
        ]
    )

    async def body_case(target: tuple[str, str], body: bytes, content_type: str | None) -> None:
        nonlocal before
        method, path = target
        sent = headers | ({"Content-Type": content_type} if content_type else {})
        async with http.request(method, path, data=body, headers=sent) as response:
            accepted = await check_reply(response, f"{method} {path} {body[:200]!r}")
            if accepted:
                await response.read()  # an SSE turn: read it to its end
        if accepted:
            before = await snapshot(fuzzed)
        else:
            assert await snapshot(fuzzed) == before, f"refused {method} {path} changed data"

    async def query_case(path_id: str, query: dict[str, str], last_event_id: str) -> None:
        # A lone surrogate goes out as the bytes it would be: invalid UTF-8 in the path.
        quoted = quote(path_id, safe="", errors="surrogatepass")
        for path in (
            f"/api/conversations/{quoted}",
            f"/api/conversations/{quoted}/messages",
            f"/api/turns/{quoted}",
            f"/api/turns/{quoted}/events",
            "/api/conversations",
        ):
            sent = headers | {"Last-Event-ID": last_event_id}
            async with http.get(path, params=query, headers=sent) as response:
                if await check_reply(response, f"GET {path} {query!r:.300}"):
                    assert path == "/api/conversations" or path_id == conversation_id, path
        assert await snapshot(fuzzed) == before

    async def token_case(authorization: str) -> None:
        response = await http.get("/api/me", headers={"Authorization": authorization})
        assert response.status == 401
        assert_documented_error((await response.json(content_type=None))["code"], "Authorization")

    # What an HTTP client lets through in a header value: printable Latin-1.
    printable = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=["Cc"])
    latin1 = st.text(printable, max_size=300)
    counts = [
        await run_cases(body_case, targets, BODIES, CONTENT_TYPES),
        await run_cases(
            query_case,
            st.one_of(IDS, st.just(conversation_id)),
            st.dictionaries(
                st.sampled_from(["limit", "cursor", "archived", "before", "after_seq"]),
                st.one_of(TEXT.filter(lambda t: "\ud800" not in t), st.integers().map(str)),
            ),
            latin1.filter(lambda t: t.strip() == t),
        ),
        await run_cases(token_case, st.one_of(latin1, latin1.map("Bearer {}".format))),
    ]
    print(f"\nfuzz: {counts[0]} bodies, {counts[1] * 5} reads, {counts[2]} Authorization headers")
    kept = await http.get(f"/api/conversations/{conversation_id}", headers=headers)
    assert kept.status == 200
