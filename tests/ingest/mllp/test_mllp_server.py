"""The MLLP listener over real sockets on 127.0.0.1: concurrency, per-connection order,
failure isolation, idle timeout, broken frames, and a full parse → ACK round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from huitong.ingest.hl7v2 import Hl7v2Error, Outcome, build_acks, parse
from huitong.ingest.mllp import FramingErrorKind, MllpClient, MllpServer, Peer, start_mllp_server

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(20):  # a hang fails the test instead of the suite
            return await coro

    return asyncio.run(bounded())


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def echo(payload: bytes, peer: Peer) -> bytes:
    await asyncio.sleep(0)  # let other connections interleave
    return b"ACK " + payload


def test_twenty_connections_each_in_order() -> None:
    seen: dict[int, list[bytes]] = {}

    async def handler(payload: bytes, peer: Peer) -> bytes:
        seen.setdefault(peer.port, []).append(payload)
        return await echo(payload, peer)

    async def client(server: MllpServer, n: int) -> list[bytes]:
        async with await MllpClient.connect("127.0.0.1", server.port) as c:
            return [await c.send(b"c%d-m%d" % (n, i)) for i in range(40)]

    async def main() -> None:
        async with await start_mllp_server(handler) as server:
            results = await asyncio.gather(*(client(server, n) for n in range(20)))
            for n, acks in enumerate(results):
                assert acks == [b"ACK c%d-m%d" % (n, i) for i in range(40)]
            assert server.stats.frames_received == 800
            assert server.stats.acks_sent == 800
            await _until(lambda: server.stats.connections_active == 0)
            assert server.stats.connections_opened == 20
        assert len(seen) == 20
        for payloads in seen.values():
            n = payloads[0].split(b"-")[0]
            assert payloads == [n + b"-m%d" % i for i in range(40)]

    run(main())


def test_pipelined_frames_are_handled_one_at_a_time_in_order() -> None:
    log: list[str] = []
    active = 0

    async def handler(payload: bytes, peer: Peer) -> bytes:
        nonlocal active
        active += 1
        assert active == 1, "a connection's frames must not be handled concurrently"
        log.append(f"start {payload.decode()}")
        await asyncio.sleep(0.01 if payload == b"1" else 0)
        log.append(f"end {payload.decode()}")
        active -= 1
        return payload

    async def main() -> None:
        async with await start_mllp_server(handler) as server:
            c = await MllpClient.connect("127.0.0.1", server.port)
            await c.send_raw(b"\x0b1\x1c\r\x0b2\x1c\r\x0b3\x1c\r")  # one write
            assert [await c.receive() for _ in range(3)] == [b"1", b"2", b"3"]
            await c.close()
        assert log == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]

    run(main())


def test_handler_exception_closes_only_that_connection() -> None:
    async def handler(payload: bytes, peer: Peer) -> bytes | None:
        if payload == b"boom":
            raise RuntimeError("handler bug")
        if payload == b"quiet":
            return None
        return b"ok " + payload

    async def main() -> None:
        async with await start_mllp_server(handler) as server:
            good = await MllpClient.connect("127.0.0.1", server.port)
            bad = await MllpClient.connect("127.0.0.1", server.port)
            assert await good.send(b"a") == b"ok a"
            with pytest.raises(ConnectionError):
                await bad.send(b"boom")
            assert await good.send(b"b") == b"ok b"
            await good.send_only(b"quiet")  # answered with nothing
            assert await good.send(b"c") == b"ok c"
            async with await MllpClient.connect("127.0.0.1", server.port) as fresh:
                assert await fresh.send(b"d") == b"ok d"
            assert server.stats.handler_errors == 1
            await good.close()
            await bad.close()

    run(main())


def test_idle_connection_is_closed() -> None:
    async def main() -> None:
        async with await start_mllp_server(echo, idle_timeout=0.2) as server:
            async with await MllpClient.connect("127.0.0.1", server.port) as c:
                with pytest.raises(ConnectionError):
                    await c.receive(timeout=10)
            assert server.stats.idle_timeouts == 1
            async with await MllpClient.connect("127.0.0.1", server.port) as c:
                assert await c.send(b"x") == b"ACK x"  # active connections stay open

    run(main())


def test_client_disconnecting_mid_frame() -> None:
    calls: list[bytes] = []

    async def handler(payload: bytes, peer: Peer) -> bytes:
        calls.append(payload)
        return b"ok"

    async def main() -> None:
        async with await start_mllp_server(handler) as server:
            c = await MllpClient.connect("127.0.0.1", server.port)
            await c.send_raw(b"\x0bMSH|^~\\&|half a message")
            await c.close()
            await _until(lambda: server.stats.framing_errors[FramingErrorKind.TRUNCATED] == 1)
            assert calls == []
            async with await MllpClient.connect("127.0.0.1", server.port) as again:
                assert await again.send(b"whole") == b"ok"
            assert calls == [b"whole"]

    run(main())


def test_garbage_and_oversized_frames_do_not_hide_the_next_message() -> None:
    async def main() -> None:
        async with await start_mllp_server(echo, max_frame_bytes=100) as server:
            async with await MllpClient.connect("127.0.0.1", server.port) as c:
                await c.send_raw(b"junk\r\n" + b"\x0b" + b"x" * 1000 + b"\x1c\r" + b"MSH\x1c\r")
                assert await c.send(b"valid") == b"ACK valid"
            errors = server.stats.framing_errors
            assert errors[FramingErrorKind.OVERSIZED] == 1
            assert errors[FramingErrorKind.MISSING_START_BLOCK] == 1
            assert errors[FramingErrorKind.GARBAGE] == 1
            assert server.stats.frames_received == 1

    run(main())


def test_client_times_out_and_closes() -> None:
    async def silent(payload: bytes, peer: Peer) -> None:
        return None

    async def main() -> None:
        async with await start_mllp_server(silent) as server:
            c = await MllpClient.connect("127.0.0.1", server.port)
            with pytest.raises(TimeoutError):
                await c.send(b"x", timeout=0.05)

    run(main())


def test_close_ends_open_connections() -> None:
    async def main() -> None:
        server = await start_mllp_server(echo, idle_timeout=None)
        c = await MllpClient.connect("127.0.0.1", server.port)
        assert await c.send(b"1") == b"ACK 1"
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionError):
            await c.send(b"2")
        await c.close()

    run(main())


def test_gb18030_message_end_to_end() -> None:
    """Parse + ACK behind the listener: the ACK comes back in the sender's encoding."""
    ids = iter(f"ACK{n}" for n in range(10))

    async def handler(payload: bytes, peer: Peer) -> bytes | None:
        try:
            parsed = parse(payload)
        except Hl7v2Error as error:
            acks = build_acks(error.header, Outcome.failed(error.issues, stored=True),
                              clock=lambda: 0, new_id=ids.__next__, codec=error.codec)
        else:
            acks = build_acks(parsed.header, Outcome.processed(parsed.warnings),
                              clock=lambda: 0, new_id=ids.__next__, codec=parsed.codec)
        return acks[0].encode() if acks else None

    message = ("MSH|^~\\&|HIS|北京协和医院|HUITONG|区域平台|20240101||ADT^A01^ADT_A01|CN9|P|2.5.1"
               "|||||GB 18030-2000\rPID|1||X||张^伟\r").encode("gb18030")

    async def main() -> None:
        async with await start_mllp_server(handler) as server:
            c = await MllpClient.connect("127.0.0.1", server.port)
            ack = await c.send(message)
            text = ack.decode("gb18030")
            assert text.startswith("MSH|^~\\&|HUITONG|区域平台|HIS|北京协和医院|")
            assert "\rMSA|AA|CN9\r" in text
            bad = await c.send(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|CN10|P|9.9\r")
            assert b"\rMSA|AR|CN10\r" in bad
            assert b"203^Unsupported version id^HL70357" in bad
            await c.close()

    run(main())


def test_reuse_port_lets_two_listeners_share_a_port() -> None:
    async def main() -> None:
        first = await start_mllp_server(echo, reuse_port=True)
        second = await start_mllp_server(echo, port=first.port, reuse_port=True)
        try:
            assert second.port == first.port
            async with await MllpClient.connect("127.0.0.1", first.port) as c:
                assert await c.send(b"x") == b"ACK x"
        finally:
            for server in (first, second):
                server.close()
                await server.wait_closed()

    run(main())
