"""MCP servers' tools through the hub, against real MCP servers (the SDK's MCPServer).

`tests/mcp_servers/tracker.py` runs over stdio (a child of the hub, through the
guard) and over streamable HTTP (its own process on a free port). The tests
call the hub as the tool loop will: `definitions()` and `call(name, input,
identity)`, and read what the server saw.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from server.identity import Identity
from server.mcp.config import HttpServer, StdioServer, load_servers
from server.mcp.hub import McpHub
from server.startup_errors import ConfigError
from tests.conftest import Service, eventually
from tests.fake_anthropic import FakeAnthropic, Reply, ToolUse
from tests.live_server import free_port, run_cli, server_env

TRACKER = Path(__file__).parent / "mcp_servers" / "tracker.py"
ALICE = Identity(tenant_id="acme", user_id="alice")


def stdio(**fields: Any) -> StdioServer:
    fields.setdefault("args", (str(TRACKER),))
    return StdioServer(transport="stdio", command=sys.executable, **fields)


def http(url: str, **fields: Any) -> HttpServer:
    return HttpServer(transport="http", url=url, **fields)


class HttpTracker:
    """The tracker over streamable HTTP, in its own process; stoppable and restartable."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(TRACKER),
            "http",
            str(self.port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        assert await eventually(listening, timeout=20), "the HTTP tracker did not start"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def http_tracker() -> AsyncIterator[HttpTracker]:
    tracker = HttpTracker()
    await tracker.start()
    yield tracker
    await tracker.stop()


@pytest.fixture
async def open_hub() -> AsyncIterator[Any]:
    hubs: list[McpHub] = []

    async def open_(servers: Mapping[str, StdioServer | HttpServer], **options: float) -> McpHub:
        settings: dict[str, Any] = {
            "connect_timeout": 10.0,
            "call_timeout": 5.0,
            "max_result_chars": 1000,
            "health_interval": 15.0,
            **options,
        }
        hub = McpHub(servers, **settings)
        hubs.append(hub)
        await hub.start()
        return hub

    yield open_
    for hub in hubs:
        await hub.close()


async def test_tools_are_namespaced_by_server_and_filtered_by_the_allowlist(
    open_hub: Any, http_tracker: HttpTracker
) -> None:
    hub = await open_hub(
        {"tracker": stdio(), "wiki": http(http_tracker.url, tools=("create_task", "pid"))}
    )
    names = {d["name"] for d in hub.definitions()}
    assert {"tracker__create_task", "tracker__whoami", "tracker__fail"} <= names
    assert {n for n in names if n.startswith("wiki__")} == {"wiki__create_task", "wiki__pid"}
    create = next(d for d in hub.definitions() if d["name"] == "tracker__create_task")
    assert create["description"] == "Create a task with this title."
    assert create["input_schema"]["required"] == ["title"]

    result = await hub.call("wiki__create_task", {"title": "ship it"}, ALICE)
    assert (result.text, result.is_error) == ("created 'ship it'", False)
    refused = await hub.call("wiki__whoami", {}, ALICE)
    assert refused.is_error and "unknown tool 'wiki__whoami'" in refused.text
    assert (await hub.call("nowhere__pid", {}, ALICE)).is_error


async def test_the_callers_identity_reaches_the_server(
    open_hub: Any, http_tracker: HttpTracker
) -> None:
    headers = {"X-Tenant": "{tenant_id}", "X-User": "user-{user_id}", "X-Static": "fixed"}
    hub = await open_hub({"tracker": stdio(), "wiki": http(http_tracker.url, headers=headers)})
    meta = {"chat/tenant_id": "acme", "chat/user_id": "alice"}

    over_stdio = json.loads((await hub.call("tracker__whoami", {}, ALICE)).text)
    assert over_stdio["meta"] == meta

    over_http = json.loads((await hub.call("wiki__whoami", {}, ALICE)).text)
    assert over_http["meta"] == meta
    assert over_http["headers"] == {"x-tenant": "acme", "x-user": "user-alice", "x-static": "fixed"}

    # Two callers at once on the one shared session: each request carries its own caller.
    bob = Identity(tenant_id="globex", user_id="bob")
    answers = await asyncio.gather(
        *(hub.call("wiki__whoami", {}, who) for who in (ALICE, bob, ALICE, bob))
    )
    tenants = [json.loads(a.text)["headers"]["x-tenant"] for a in answers]
    assert tenants == ["acme", "globex", "acme", "globex"]


async def test_failures_time_outs_and_big_answers_are_results_not_exceptions(
    open_hub: Any,
) -> None:
    hub = await open_hub(
        {"tracker": stdio(), "quick": stdio(call_timeout_seconds=0.3)}, max_result_chars=100
    )
    failed = await hub.call("tracker__fail", {"reason": "disk full"}, ALICE)
    assert failed.is_error and "fail" in failed.text

    bad_input = await hub.call("tracker__create_task", {"title": 42}, ALICE)
    assert bad_input.is_error

    started = time.monotonic()
    slow = await hub.call("quick__slow", {"seconds": 30}, ALICE)
    assert slow.is_error and slow.text == "quick__slow timed out after 0.3 s"
    assert time.monotonic() - started < 3

    big = await hub.call("tracker__big", {"chars": 5000}, ALICE)
    assert not big.is_error
    assert big.text == "x" * 100 + "\n[truncated: 4900 more characters]"

    # The server is still fine after all that.
    assert not (await hub.call("quick__create_task", {"title": "t"}, ALICE)).is_error


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_cancelled_call_cancels_the_mcp_request(
    open_hub: Any, http_tracker: HttpTracker, tmp_path: Path, transport: str
) -> None:
    config = stdio() if transport == "stdio" else http(http_tracker.url)
    hub = await open_hub({"tracker": config})
    marker = tmp_path / "cancelled"
    call = asyncio.create_task(
        hub.call("tracker__slow", {"seconds": 30, "marker": str(marker)}, ALICE)
    )
    await asyncio.sleep(0.5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    async def server_saw_it() -> bool:
        return marker.exists()

    assert await eventually(server_saw_it), "the server's handler was not cancelled"
    assert not (await hub.call("tracker__create_task", {"title": "next"}, ALICE)).is_error


async def test_a_server_that_fails_to_start_is_skipped_with_one_line(
    open_hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.mcp")
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    started = time.monotonic()
    hub = await open_hub(
        {
            "missing": StdioServer(transport="stdio", command="no-such-mcp-server"),
            "crashing": stdio(args=("-c", "raise SystemExit(3)")),
            "unreachable": http(dead),
            "tracker": stdio(),
        },
        connect_timeout=3.0,
    )
    assert time.monotonic() - started < 5
    assert {d["name"].split("__")[0] for d in hub.definitions()} == {"tracker"}
    assert not (await hub.call("tracker__create_task", {"title": "x"}, ALICE)).is_error

    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3, skipped
    assert any(
        line.startswith("MCP server missing skipped at start-up: ")
        and "no such command: no-such-mcp-server" in line
        for line in skipped
    )
    assert any(line.startswith("MCP server crashing skipped") for line in skipped)
    assert any(line.startswith("MCP server unreachable skipped") for line in skipped)

    result = await hub.call("missing__anything", {}, ALICE)
    assert result.is_error


async def test_a_stdio_server_that_dies_is_restarted(open_hub: Any) -> None:
    hub = await open_hub({"tracker": stdio()}, health_interval=0.2)
    first = int((await hub.call("tracker__pid", {}, ALICE)).text)
    os.kill(first, signal.SIGKILL)

    async def new_pid() -> int | None:
        result = await hub.call("tracker__pid", {}, ALICE)
        return None if result.is_error or int(result.text) == first else int(result.text)

    second = await eventually(new_pid, timeout=10)
    assert second and second != first
    assert not _alive(first)


async def test_an_http_server_that_goes_away_is_reconnected_on_the_next_call(
    open_hub: Any, http_tracker: HttpTracker
) -> None:
    # A long health interval: only the calls themselves notice the drop.
    hub = await open_hub({"wiki": http(http_tracker.url)}, health_interval=60.0)
    before = (await hub.call("wiki__pid", {}, ALICE)).text
    await http_tracker.stop()
    lost = await hub.call("wiki__pid", {}, ALICE)
    assert lost.is_error

    await http_tracker.start()  # the same port, a new process with no sessions

    async def answered() -> str | None:
        result = await hub.call("wiki__pid", {}, ALICE)
        return None if result.is_error else result.text

    after = await eventually(answered, timeout=10)
    assert after and after != before


@pytest.mark.parametrize(
    ("suffix", "content", "says"),
    [
        (".toml", "servers = [", "not valid TOML"),
        (".json", "{", "not valid JSON"),
        (".toml", '[servers.t]\ntransport = "ftp"\n', "servers.t: Input tag 'ftp'"),
        (".toml", '[servers.t]\ntransport = "stdio"\n', "servers.t.stdio.command: Field required"),
        (".toml", '[servers.a__b]\ntransport = "stdio"\ncommand = "x"\n', "servers.a__b"),
        (
            ".json",
            '{"servers": {"w": {"transport": "http", "url": "https://w/mcp",'
            ' "headers": {"X-T": "{tenant}"}}}}',
            "unknown placeholder {tenant}",
        ),
        (".toml", '[servers.t]\ntransport = "stdio"\ncommand = "x"\ncolour = 1\n', "colour"),
    ],
    ids=["toml", "json", "transport", "command", "name", "placeholder", "unknown-field"],
)
def test_a_bad_servers_file_is_one_line_naming_the_file_and_field(
    tmp_path: Path, suffix: str, content: str, says: str
) -> None:
    path = tmp_path / f"mcp{suffix}"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        load_servers(path)
    message = str(raised.value)
    assert message.startswith(f"MCP_SERVERS_FILE: {path}: "), message
    assert says in message and "\n" not in message


def test_a_servers_file_in_json_or_toml(tmp_path: Path) -> None:
    toml = tmp_path / "mcp.toml"
    toml.write_text(
        '[servers.tracker]\ntransport = "stdio"\ncommand = "tracker"\nargs = ["--db", "x"]\n'
        'tools = ["create_task"]\n\n[servers.wiki]\ntransport = "http"\n'
        'url = "https://wiki.example/mcp"\nheaders = { X-Tenant = "{tenant_id}" }\n'
    )
    as_json = tmp_path / "mcp.json"
    as_json.write_text(
        json.dumps({"servers": {k: v.model_dump() for k, v in load_servers(toml).items()}})
    )
    assert load_servers(as_json) == load_servers(toml)
    wiki = load_servers(toml)["wiki"]
    assert isinstance(wiki, HttpServer)
    assert wiki.identity_headers(ALICE) == {"X-Tenant": "acme"} and wiki.static_headers == {}


async def test_the_service_refuses_a_bad_servers_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp.toml"
    path.write_text('[servers.t]\ntransport = "stdio"\n')
    env = server_env(
        MCP_SERVERS_FILE=str(path), PORT=str(free_port()), DATA_DIR=str(tmp_path / "data")
    )
    code, out, err = await run_cli(env=env)
    assert (code, out) == (2, ""), err
    assert err.strip() == (
        f"configuration error: MCP_SERVERS_FILE: {path}: servers.t.stdio.command: Field required"
    )


def _alive(pid: int) -> bool:
    """Running, not a zombie (a reparented zombie may wait a while for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _processes_mentioning(marker: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def _children(pids: set[int]) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent in pids:
                found.add(int(entry.name))
    return found


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_no_stdio_server_outlives_the_service(tmp_path: Path, how: signal.Signals) -> None:
    marker = f"marker-{os.getpid()}-{how.name}-{tmp_path.name}"
    servers = tmp_path / "mcp.toml"
    servers.write_text(
        f'[servers.tracker]\ntransport = "stdio"\ncommand = "{sys.executable}"\n'
        f'args = ["{TRACKER}", "stdio", "{marker}"]\nenv = {{ TRACKER_HELPER = "1" }}\n'
    )
    port = free_port()
    env = server_env(MCP_SERVERS_FILE=str(servers), PORT=str(port), DATA_DIR=str(tmp_path / "d"))
    service = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        env=env,
        cwd=Path(__file__).parent.parent,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        # Guard, server and the server's helper: three processes, the helper a grandchild.
        async def all_up() -> set[int]:
            mentioned = _processes_mentioning(marker)
            helpers = _children(mentioned) - mentioned
            return mentioned | helpers if len(mentioned) == 2 and helpers else set()

        tree = await eventually(all_up, timeout=30, interval=0.1)
        assert tree, "the stdio server did not start"
        service.send_signal(how)
        await asyncio.wait_for(service.wait(), 15)

        async def all_gone() -> bool:
            return not any(_alive(pid) for pid in tree)

        assert await eventually(all_gone, timeout=10), [p for p in tree if _alive(p)]
    finally:
        if service.returncode is None:
            service.kill()
            await service.wait()


def test_the_example_servers_file_is_valid() -> None:
    example = Path(__file__).parent.parent / "deploy" / "mcp-servers.example.toml"
    assert set(load_servers(example)) == {"tracker", "wiki"}


async def test_the_model_calls_an_mcp_tool_through_the_tool_loop_as_the_caller(
    service: Service, fake: FakeAnthropic, tmp_path: Path
) -> None:
    servers = tmp_path / "mcp.json"
    servers.write_text(
        json.dumps(
            {
                "servers": {
                    "tracker": {
                        "transport": "stdio",
                        "command": sys.executable,
                        "args": [str(TRACKER)],
                    }
                }
            }
        )
    )
    await service.reconfigure(MCP_SERVERS_FILE=str(servers))
    fake.script(
        Reply.blocks(ToolUse("toolu_m1", "tracker__whoami", {}), stop_reason="tool_use"),
        Reply.text(["Done."]),
    )
    ws = await service.ws(user="carol", tenant="acme")

    frames = await ws.turn("Who am I to the tracker?")

    assert frames[-1]["type"] == "turn.done", frames[-1]
    offered = {tool["name"] for tool in fake.requests[0].body["tools"]}
    assert {"tracker__whoami", "tracker__create_task", "search_conversations"} <= offered
    result = next(f for f in frames if f["type"] == "turn.tool_result")
    assert (result["name"], result["status"]) == ("tracker__whoami", "ok")
    # The MCP server saw the caller, and its answer went back to the model.
    answered = fake.requests[1].sent["messages"][-1]["content"][0]
    assert answered["type"] == "tool_result" and answered["tool_use_id"] == "toolu_m1"
    seen = json.loads(answered["content"])
    assert seen["meta"] == {"chat/tenant_id": "acme", "chat/user_id": "carol"}
    await ws.close()
