"""Enhanced acknowledgement mode with a return address, on the real repository (SQLite and
PostgreSQL) and real MLLP: the accept ACK comes back on the inbound connection as soon as
the message is stored; the application ACK MSH-16 asks for is sent after processing over a
NEW connection to a real asyncio MLLP listener standing in for the sender's system, retried
with back-off while that listener is down, kept across a restart, and given up (visible as
undelivered) after the channel's tries."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest
from ingest_clock import Clock

from huitong.config import Settings
from huitong.fhir.errors import Category, FhirError
from huitong.ingest.app_acks import AppAckStatus
from huitong.ingest.channels import ChannelConfigError, channel_from_config
from huitong.ingest.message_store import MessageStatus
from huitong.ingest.mllp import start_mllp_server
from huitong.ingest.mllp.client import MllpClient
from huitong.ingest.service import IngestService
from huitong.server import create_app
from huitong.server.bundle import run_transaction
from huitong.server.ingest_api import in_transaction
from huitong.server.request import ServerContext
from huitong.store import Repository

MINUTE_US = 60_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _adt(control: str, mrn: str, msh15: str = "AL", msh16: str = "AL") -> bytes:
    return (
        f"MSH|^~\\&|HIS|COUNTY|HUITONG|REGION|20261122083000+0800||ADT^A04^ADT_A01|{control}|P|"
        f"2.5|||{msh15}|{msh16}\r"
        f"EVN|A04|20261122083000+0800\r"
        f"PID|1||{mrn}^^^COUNTY^MR||张^伟||19700101|M\r"
    ).encode()


def _msa(payload: bytes) -> list[str]:
    return next(s for s in payload.decode().split("\r") if s.startswith("MSA")).split("|")


class Poison:
    """The real transaction executor; refuses (INVALID) bundles naming ``poison``."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.poison: str | None = None

    def submit(self, bundle, before_commit):
        if self.poison and self.poison in str(bundle):
            raise FhirError(Category.INVALID, "refused by the test / 测试拒绝")
        return run_transaction(self.ctx, bundle, before_commit)

    def submit_in(self, tx, bundle, before_commit):
        if self.poison and self.poison in str(bundle):
            raise FhirError(Category.INVALID, "refused by the test / 测试拒绝")
        return run_transaction(in_transaction(self.ctx, tx), bundle, before_commit)


def _service(repo: Repository, clock: Clock, ack_port: int | None, *, max_attempts: int = 8
             ) -> tuple[IngestService, Poison]:
    ids = (f"id{i}" for i in itertools.count())
    ctx = ServerContext(repo, Settings.from_env({}, database_url="unused"), clock,
                        lambda: next(ids))
    poison = Poison(ctx)
    service = IngestService(repo, poison.submit, clock, lambda: next(ids),
                            submit_in=poison.submit_in)
    config = {"id": "county", "organization": "Organization/county", "transport": "mllp",
              "format": "hl7v2", "sending_facility": "COUNTY", "max_attempts": max_attempts}
    if ack_port is not None:
        config |= {"ack_host": "127.0.0.1", "ack_port": ack_port}
    service.put_channel(channel_from_config(config))
    return service, poison


class SenderSystem:
    """The sender's own MLLP listener for application ACKs (a real asyncio server)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.server = None

    async def start(self, port: int) -> None:
        async def handle(payload: bytes, peer: object) -> None:
            self.received.append(payload)
            return None  # the application ACK asks for no answer (MSH-15/16 NE)

        self.server = await start_mllp_server(handle, "127.0.0.1", port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def wait_for(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.received) < n:
                await asyncio.sleep(0.01)


def _deliver(service: IngestService) -> int:
    return asyncio.run(service.deliver_app_acks())


# (MSH-15, MSH-16, poisoned, inbound ACK codes, application ACK delivered later)
CASES = [
    ("AL", "AL", False, ["CA"], "AA"),
    ("AL", "AL", True, ["CA"], "AR"),
    ("AL", "NE", False, ["CA"], None),
    ("NE", "AL", False, [], "AA"),
    ("AL", "ER", False, ["CA"], None),  # ER: only on error
    ("AL", "ER", True, ["CA"], "AR"),
    ("AL", "SU", False, ["CA"], "AA"),  # SU: only on success
    ("AL", "SU", True, ["CA"], None),
]


@pytest.mark.parametrize(("msh15", "msh16", "poisoned", "inbound", "later"), CASES)
def test_accept_now_application_ack_later_to_the_return_address(
    repo, msh15, msh16, poisoned, inbound, later
):
    clock = Clock()
    port = _free_port()
    service, poison = _service(repo, clock, port)
    if poisoned:
        poison.poison = "M1"
    result = service.receive_hl7v2(_adt("C1", "M1", msh15, msh16))
    assert [_msa(a)[1] for a in result.acks] == inbound
    assert all(_msa(a)[2] == "C1" for a in result.acks)
    # Stored, not yet processed: the retry worker's job.
    assert service.store.get(result.message.id).status is MessageStatus.QUEUED
    assert service.store.due() == [result.message.id]
    assert service.run_due() == 1
    final = service.store.get(result.message.id)
    assert final.status is (MessageStatus.ERROR if poisoned else MessageStatus.PROCESSED)

    sender = SenderSystem()

    async def deliver() -> int:
        await sender.start(port)
        try:
            return await service.deliver_app_acks()
        finally:
            await sender.stop()

    tried = asyncio.run(deliver())
    if later is None:
        assert tried == 0 and sender.received == []
        assert service.app_acks.for_message(result.message.id) is None
        return
    assert tried == 1 and len(sender.received) == 1
    msa = _msa(sender.received[0])
    assert msa[1:3] == [later, "C1"]
    if later == "AR":
        assert any(s.startswith("ERR") for s in sender.received[0].decode().split("\r"))
    ack = service.app_acks.for_message(result.message.id)
    assert ack is not None and ack.status is AppAckStatus.DELIVERED and ack.attempts == 1


def test_a_listener_down_first_gets_its_ack_on_a_retry_and_a_restart_loses_nothing(repo):
    clock = Clock()
    port = _free_port()
    service, _ = _service(repo, clock, port)
    result = service.receive_hl7v2(_adt("C7", "M7"))
    service.run_due()
    # Nobody listens at the return address yet: the try fails and backs off.
    assert _deliver(service) == 1
    ack = service.app_acks.for_message(result.message.id)
    assert ack.status is AppAckStatus.PENDING and ack.attempts == 1
    assert ack.last_error and ack.next_attempt_at > clock.now
    assert _deliver(service) == 0  # not due yet

    # "Restart": a new service on the same database; nothing in memory survives.
    restarted, _ = _service(repo, clock, port)
    clock.now += MINUTE_US
    sender = SenderSystem()

    async def deliver() -> int:
        await sender.start(port)
        try:
            return await restarted.deliver_app_acks()
        finally:
            await sender.stop()

    assert asyncio.run(deliver()) == 1
    assert [_msa(p)[1:3] for p in sender.received] == [["AA", "C7"]]
    ack = restarted.app_acks.for_message(result.message.id)
    assert ack.status is AppAckStatus.DELIVERED and ack.attempts == 2


def test_undelivered_after_the_channels_tries_then_rearmed_by_a_resend(repo):
    clock = Clock()
    port = _free_port()
    service, _ = _service(repo, clock, port, max_attempts=2)
    result = service.receive_hl7v2(_adt("C8", "M8"))
    service.run_due()
    for _ in range(3):
        _deliver(service)
        clock.now += 10 * MINUTE_US
    ack = service.app_acks.for_message(result.message.id)
    assert ack.status is AppAckStatus.UNDELIVERED and ack.attempts == 2
    found, total = service.app_acks.search(status=AppAckStatus.UNDELIVERED)
    assert total == 1 and found[0].summary()["message"] == result.message.id
    assert "payload" not in found[0].summary()
    # The sender resends (it never got its application ACK): CA again, no second
    # processing, and the owed ACK is armed again.
    again = service.receive_hl7v2(_adt("C8", "M8"))
    assert [_msa(a)[1] for a in again.acks] == ["CA"]
    assert again.message.id == result.message.id
    assert service.store.get(result.message.id).attempts == 1
    ack = service.app_acks.for_message(result.message.id)
    assert ack.status is AppAckStatus.PENDING and ack.attempts == 0


def test_batched_intake_defers_enhanced_messages_and_processes_the_rest(repo):
    clock = Clock()
    service, _ = _service(repo, clock, _free_port())
    raws = [_adt("E1", "M1"), _adt("O1", "M2", "", ""), _adt("E2", "M3", "AL", "NE")]
    results = service.receive_hl7v2_batch(raws)
    assert [[_msa(a)[1] for a in r.acks] for r in results] == [["CA"], ["AA"], ["CA"]]
    statuses = [service.store.get(r.message.id).status for r in results]
    assert statuses == [MessageStatus.QUEUED, MessageStatus.PROCESSED, MessageStatus.QUEUED]
    assert service.run_due() == 2
    assert service.app_acks.search()[1] == 1  # E2 asked for none (MSH-16 NE)


def test_without_a_return_address_both_acks_come_back_on_the_connection(repo):
    """Today's behaviour, kept: processed at once, CA then AA on the inbound connection."""
    clock = Clock()
    service, _ = _service(repo, clock, None)
    result = service.receive_hl7v2(_adt("N1", "M1"))
    assert [_msa(a)[1] for a in result.acks] == ["CA", "AA"]
    assert service.store.get(result.message.id).status is MessageStatus.PROCESSED
    assert service.app_acks.search()[1] == 0


def test_end_to_end_over_mllp_accept_on_the_connection_application_ack_to_the_listener(repo):
    """Both directions over real sockets: our listener (the engine) answers CA on the
    inbound connection; the application ACK arrives at the sender's listener."""
    clock = Clock()
    port = _free_port()
    service, _ = _service(repo, clock, port)
    sender = SenderSystem()

    async def main() -> tuple[list[bytes], list[bytes]]:
        await sender.start(port)

        async def handle(payload: bytes, peer: object) -> list[bytes]:
            return (await asyncio.to_thread(service.receive_hl7v2, payload)).acks

        engine = await start_mllp_server(handle)
        try:
            async with await MllpClient.connect("127.0.0.1", engine.port) as client:
                first = await client.send(_adt("X1", "M1"))
            await asyncio.to_thread(service.run_due)
            await service.deliver_app_acks()
            await sender.wait_for(1)
            return [first], sender.received
        finally:
            engine.close()
            await engine.wait_closed()
            await sender.stop()

    inbound, later = asyncio.run(main())
    assert _msa(inbound[0])[1:3] == ["CA", "X1"]
    assert _msa(later[0])[1:3] == ["AA", "X1"]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"ack_host": "10.0.0.1"}, "ack_port"),
        ({"ack_port": 6661}, "ack_host"),
        ({"ack_host": "10.0.0.1", "ack_port": 70000}, "ack_port"),
        ({"ack_host": "", "ack_port": 6661}, "ack_host"),
    ],
)
def test_return_address_configuration_is_checked(config, field):
    base = {"id": "c", "organization": "Organization/o", "transport": "mllp",
            "format": "hl7v2", "sending_facility": "F"}
    with pytest.raises(ChannelConfigError) as err:
        channel_from_config(base | config)
    assert err.value.field == field and err.value.zh


@pytest.fixture
def api(repo):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    from server_helpers import Client

    settings = Settings.from_env({}, database_url="unused", auth="off",
                                 base_url="http://hie.test/fhir")
    app = create_app(repo, settings)
    client = Client(app)
    client.app = app
    yield client
    client.close()


def test_operator_api_lists_undelivered_acks_and_rearms_them(api):
    port = _free_port()  # nobody listens there
    resp = api.put("/api/ingest/channels/county", json={
        "organization": "Organization/county", "transport": "mllp", "format": "hl7v2",
        "sending_facility": "COUNTY", "ack_host": "127.0.0.1", "ack_port": port,
        "max_attempts": 1})
    assert resp.status_code == 200, resp.text
    posted = api.post("/api/ingest/channels/county/hl7v2", content=_adt("H1", "M1"),
                      headers={"content-type": "x-application/hl7-v2+er7"})
    assert posted.status_code == 202, posted.text  # accepted; the result comes later
    assert _msa(posted.content)[1:3] == ["CA", "H1"]
    service = api.app.state.ingest
    assert service.run_due() == 1
    assert asyncio.run(service.deliver_app_acks()) == 1  # refused: its one try is spent
    listed = api.get("/api/ingest/app-acks?status=undelivered").json()
    assert listed["total"] == 1
    [row] = listed["acks"]
    assert (row["ack"], row["attempts"], row["address"]) == ("AA", 1, f"127.0.0.1:{port}")
    detail = api.get(f"/api/ingest/messages/{row['message']}").json()
    assert detail["applicationAck"]["status"] == "undelivered"
    again = api.post(f"/api/ingest/app-acks/{row['id']}/retry").json()
    assert (again["status"], again["attempts"]) == ("pending", 0)
    assert api.get("/api/ingest/app-acks?status=nonsense").status_code == 400
    assert api.post("/api/ingest/app-acks/999999/retry").status_code == 404


def test_the_retry_worker_writes_due_messages_as_one_group(repo):
    clock = Clock()
    service, poison = _service(repo, clock, _free_port())
    calls = {"grouped": 0, "alone": 0}
    inner_in, inner = service.hl7v2.submit_in, service.hl7v2.submit

    def submit_in(tx, bundle, before_commit):
        calls["grouped"] += 1
        return inner_in(tx, bundle, before_commit)

    def submit(bundle, before_commit):
        calls["alone"] += 1
        return inner(bundle, before_commit)

    service.hl7v2.submit_in, service.hl7v2.submit = submit_in, submit
    poison.poison = "M3"
    ids = [service.receive_hl7v2(_adt(f"G{i}", f"M{i}")).message.id for i in range(5)]
    assert service.run_due() == 5
    statuses = [service.store.get(i).status for i in ids]
    assert statuses == [MessageStatus.PROCESSED] * 3 + [MessageStatus.ERROR,
                                                        MessageStatus.PROCESSED]
    # The group failed on M3 and was rolled back; then each was written alone.
    assert calls["grouped"] >= 1 and calls["alone"] == 5
    codes = sorted(service.app_acks.for_message(i).ack_code for i in ids)
    assert codes == ["AA", "AA", "AA", "AA", "AR"]
    assert service.run_due() == 0


def test_the_retry_worker_groups_a_clean_batch_in_one_transaction(repo):
    clock = Clock()
    service, _ = _service(repo, clock, _free_port())
    calls = {"alone": 0}
    inner = service.hl7v2.submit

    def submit(bundle, before_commit):
        calls["alone"] += 1
        return inner(bundle, before_commit)

    service.hl7v2.submit = submit
    ids = [service.receive_hl7v2(_adt(f"K{i}", f"M{i}")).message.id for i in range(4)]
    assert service.run_due() == 4
    assert calls["alone"] == 0
    assert {service.store.get(i).status for i in ids} == {MessageStatus.PROCESSED}
    assert service.app_acks.search()[1] == 4
