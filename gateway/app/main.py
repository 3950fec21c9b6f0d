"""The composition root: the only place that picks implementations and wires them together.

Rule 1: everything is loaded and checked before the listener opens (fail closed: a bad trust list, policy set,
        key or store stops startup with ``Unavailable``).
Rule 2: paired start/stop in one async context manager (``running_gateway``): the listener closes first
        (draining in-flight requests), then the store flushes and closes. A stop step that fails (a full disk
        refuses the last checkpoint) does not skip the steps after it; its ``Unavailable`` is raised once all
        have run (or, when startup itself failed, only logged: the startup error is the one reported).
Rule 3: one process per ``data_dir``: its lock (``gateway/infra/datadir.py``) is taken before any store opens
        and released last.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.edifact import MEDIA_EDIFACT, EdifactTranslator
from adapters.grpc_api.delivery import GrpcDeliverer, delivery_credentials
from adapters.grpc_api.edge import GrpcServices
from adapters.grpc_api.relay import ClientPem, GrpcRelayClient
from adapters.grpc_api.server import GrpcListener, TlsMaterial, start_grpc
from adapters.httpedge import runner_options
from adapters.rest.app import RestServices, build_app
from adapters.soap.app import SoapServices, build_soap_app
from adapters.soap.delivery import ClientTls, SoapDeliverer
from adapters.soap.names import SOAP_PATH
from adapters.soap.submission import SoapDocumentVerifier
from gateway.app.auditor import publish_checkpoint_file
from gateway.app.eventloop import loop_name
from gateway.app.federationsettings import FederationSettings
from gateway.app.settings import Settings
from gateway.core.directory import Directory, PeerGateway
from gateway.core.errors import GatewayError, Unavailable
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.peertrust import PeerTrust
from gateway.core.pki import FederationTrust
from gateway.core.policy import Authorizer
from gateway.delivery.deadletters import DeadLetters
from gateway.delivery.worker import DeliveryWorker
from gateway.exchange.faults import CRASH_ENV, CrashPoint
from gateway.exchange.handlers import Handlers
from gateway.exchange.inbox import Wakeups
from gateway.exchange.metrics import Metrics
from gateway.exchange.outbox import GatewayOutbox
from gateway.exchange.pipeline import Pipeline
from gateway.exchange.recovery import Recovery
from gateway.exchange.rejections import Rejections
from gateway.exchange.state import GatewayState, Identity, Trust
from gateway.features.aeo.handler import AeoHandler
from gateway.features.aeo.recognition import Recognition
from gateway.features.edifact.handler import EdifactHandler
from gateway.features.recall.handler import RecallHandler
from gateway.features.release.handler import ReleaseHandler
from gateway.features.release.portstream import PortStreams
from gateway.infra.aeo_store import open_recognition
from gateway.infra.backends import describe, open_port_streams, open_store, open_witness_store, policy_board
from gateway.infra.datadir import DataDirLock
from gateway.infra.federationfiles import accept_directory, load_witness_key
from gateway.infra.files import (
    FileSignature,
    load_certificates,
    load_checkpoint_history,
    load_checkpoint_key,
    load_private_key,
    load_trust,
)
from gateway.infra.policyfiles import bundle_programs, load_bundle
from gateway.infra.relay_client import ClientIdentity, RelayClient, relay_tls
from gateway.infra.webhook import WebhookDeliverer, webhook_tls
from gateway.interfaces.protocols import (
    Deliverer,
    DeliveryAttempt,
    InboxItem,
    PortStreamStore,
    Store,
    WitnessStore,
)
from gateway.ops.directoryadmin import DirectoryPaths, DirectoryReloader
from gateway.ops.exchangelog import ExchangeLog
from gateway.ops.ledger import Ledger
from gateway.ops.operations import Operations, crl_problem
from gateway.ops.policyadmin import PolicyReloader
from gateway.ops.trustadmin import TrustPaths, TrustReloader, require_home
from gateway.ops.witnessing import Cosigner, DirectoryInForce, WitnessService, require_own_entry

log = structlog.get_logger("gateway.app.main")

# Time given to in-flight requests when the gateway stops (graceful drain).
SHUTDOWN_GRACE_SECONDS = 10.0
# A new signed checkpoint is published at most this often while the ledger grows (and once at shutdown).
CHECKPOINT_INTERVAL_SECONDS = 5.0
# TLS 1.2 suites offered: ECDHE with an AEAD cipher only (AES-GCM, ChaCha20-Poly1305), no CBC, no RSA key
# exchange; gRPC's listener offers the ECDHE AES-GCM ones. TLS 1.3 suites are all AEAD and stay as OpenSSL sets them.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
# settle_heap: net allocations between collections of the youngest generation (CPython's default is 700).
YOUNG_GC_THRESHOLD = 10_000


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: Settings
    state: GatewayState
    pipeline: Pipeline
    ledger: Ledger
    store: Store
    url: str
    grpc_target: str | None = None  # "host:port" of the gRPC listener when [gateway] grpc_port is set
    delivery: DeliveryWorker | None = None  # the push worker (gateway/delivery/worker.py)
    operations: Operations | None = None  # readiness, metrics, dead letters (gateway/ops/operations.py)
    policies: PolicyReloader | None = None  # policy hot reload (SIGHUP, POST /v1/admin/policies/reload)
    trust: TrustReloader | None = None  # trust hot reload (file watch, SIGHUP, POST /v1/admin/trust/reload)
    aeo: Recognition | None = None  # AEO mutual recognition (gateway/features/aeo/recognition.py)
    ports: PortStreams | None = None  # port release synchronisation (gateway/features/release/portstream.py)
    witnessing: Witnessing | None = None  # cross-witnessing with the federation's peers ([federation])
    recovery: Recovery | None = None  # the one loop replaying the features' effects from the ledger
    directory: DirectoryReloader | None = None  # federation directory hot reload (file watch, SIGHUP)


def gateway_issuer(member_id: str) -> str:
    """The gateway's stable identity as token issuer and assertion audience (independent of host and port)."""
    return f"urn:cgw:gateway:{member_id}"


def trust_paths(settings: Settings) -> TrustPaths:
    return TrustPaths(anchors=settings.trust_anchors, crl=settings.trust_crl, registry=settings.trust_registry)


def directory_paths(settings: Settings) -> DirectoryPaths:
    assert settings.federation is not None
    return DirectoryPaths(settings.federation.directory, settings.federation.operator_key, settings.data_dir)


def load_state(settings: Settings, trust_files: FederationTrust | None = None) -> GatewayState:
    """Everything the pipeline decides with; ``trust_files`` when the caller has already read them."""
    if trust_files is None:
        trust_files = load_trust(settings.trust_anchors, settings.trust_crl, settings.trust_registry)
    registry = trust_files.registry
    require_home(registry, settings.member_id)
    key = load_private_key(settings.signing_key)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise Unavailable("the gateway signing key must be ECDSA P-256", field="signing.key")
    identity = Identity(private_key=key, chain=tuple(load_certificates(settings.signing_cert)))
    bundle = load_bundle(settings.policies_dir)  # the programme table is part of it (and of its digest)
    authorizer = Authorizer(bundle, registry, MESSAGE_TYPES, programs=bundle_programs(bundle, MESSAGE_TYPES))
    return GatewayState(
        member_id=settings.member_id,
        issuer=gateway_issuer(settings.member_id),
        identity=identity,
        limits=settings.limits,
        trust=Trust(validator=trust_files, registry=registry, version=trust_files.version),
        authorizer=authorizer,
    )


def server_tls(settings: Settings, peer_anchors: bytes = b"") -> ssl.SSLContext:
    """TLS 1.2+ (AEAD suites only); a client certificate is requested (mTLS callers) but optional (token callers).

    ``peer_anchors`` (PEM): the TLS anchors of the federation's peer gateways (relays, gateway/core/peertrust.py):
    a certificate they issued completes the handshake, and only ``Pipeline.relay`` accepts it (a member endpoint
    validates the certificate against the federation anchor and the registry and refuses it)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    context.load_verify_locations(cafile=str(settings.trust_anchors))
    if peer_anchors:
        context.load_verify_locations(cadata=peer_anchors.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def grpc_tls(settings: Settings, peer_anchors: bytes = b"") -> TlsMaterial:
    """The same server certificate and anchors (federation, peer gateways) as REST; gRPC requires a client cert."""
    anchors = settings.trust_anchors.read_bytes()
    return TlsMaterial(
        key_pem=settings.tls_key.read_bytes(),
        chain_pem=settings.tls_cert.read_bytes(),
        anchors_pem=anchors if not peer_anchors else anchors.rstrip(b"\n") + b"\n" + peer_anchors,
    )


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:  # noqa: PLR0912, PLR0915 - the one composition root: every start beside its stop
    settings = _with_crash_point(settings)
    require_free_ports(settings)  # before anything is written: a second gateway on the same ports leaves no trace
    paths = trust_paths(settings)
    seen = paths.signature()  # before reading: a file replaced from now on is reloaded by the watcher
    serving = load_trust(paths.anchors, paths.crl, paths.registry)
    state = load_state(settings, serving)
    checkpoint_key = load_checkpoint_key(settings.checkpoint_key)
    if (stale := crl_problem(state.require_trust(), SystemClock().now())) is not None:
        log.warning("CRL not current: every message is refused until a fresh CRL is loaded", reason=stale)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock.acquire(settings.data_dir)  # Rule 3: before any store opens
    clock = SystemClock()
    try:
        store = await open_store(settings, clock)  # [store] backend: sqlite or redis
    except BaseException:
        lock.release()
        raise
    runner: web.AppRunner | None = None
    grpc_listener: GrpcListener | None = None
    ledger: Ledger | None = None
    pipeline: Pipeline | None = None
    checkpointer: asyncio.Task[None] | None = None
    trust_watch: asyncio.Task[None] | None = None
    directory_watch: asyncio.Task[None] | None = None
    directory: DirectoryReloader | None = None
    aeo: Recognition | None = None
    push: PushDelivery | None = None
    port_store: PortStreamStore | None = None
    policies: PolicyReloader | None = None
    witnessing: Witnessing | None = None
    try:
        wakeups = Wakeups()  # the inbox long-polls, woken by the pipeline and by the gateway's own messages
        outbox = GatewayOutbox(store=store, state=state, clock=clock, wake=wakeups.wake)
        port_store = await open_port_streams(settings, store)
        ports = PortStreams(
            port_store,
            outbox=outbox,
            state=state,
            clock=clock,
            subscriptions=settings.ports.subscriptions,
            push_streams=settings.ports.push_streams,
            crash=CrashPoint.parse(settings.crash_point),
        )
        aeo = open_recognition(settings, state.require_trust().registry, store.record)
        # The domain features, one registration each (gateway/exchange/handlers.py); hooks run in this order
        handlers = Handlers()
        handlers.register(aeo_handler := AeoHandler(aeo))
        handlers.register(ReleaseHandler(ports, state))
        handlers.register(RecallHandler(store))
        translators = {MEDIA_EDIFACT: EdifactTranslator()}
        handlers.register(EdifactHandler(translators, outbox=outbox, store=store, state=state, clock=clock))
        recovery = Recovery(store=store, handlers=handlers, registry=lambda: state.require_trust().registry)
        await recovery.run()  # the effects a crash kept from happening (AEO status updates, port streams)
        if settings.store.backend == "redis":  # other processes accept aeo.status.v1 too: follow the shared ledger
            aeo_handler.follow(recovery)
        metrics = Metrics(MESSAGE_TYPES)
        directory_seen = None if settings.federation is None else directory_paths(settings).signature()
        federation = None if settings.federation is None else Federation.load(settings, settings.federation, clock)
        relays = None if federation is None else federation.relays()  # B's side: the peers that may relay to us
        pipeline = Pipeline(
            store=store,
            state=state,
            clock=clock,
            document_verifiers={"soap": SoapDocumentVerifier()},
            metrics=metrics,
            crash=CrashPoint.parse(settings.crash_point),
            handlers=handlers,
            wakeups=wakeups,
            routes=None if federation is None else federation.routes,
            peers=relays,
        )
        push = PushDelivery.build(
            settings, state, store, clock, metrics, rejections=pipeline.rejections, federation=federation
        )
        # policy and trust reloads never interleave (``gateway.ops.trustadmin``: one reload at a time)
        reloading = asyncio.Lock()
        policies = PolicyReloader(
            state=state,
            store=store,
            clock=clock,
            directory=settings.policies_dir,
            lock=reloading,
            board=policy_board(store),  # several processes on one store follow one policy set
            rejections=pipeline.rejections,
        )
        await policies.start()
        trust = TrustReloader(
            state=state,
            store=store,
            clock=clock,
            paths=paths,
            serving=serving,
            seen=seen,
            lock=reloading,
            rejections=pipeline.rejections,
        )
        data_dir = settings.data_dir

        async def publish(note: bytes) -> None:
            await asyncio.to_thread(publish_checkpoint_file, data_dir, note)

        history = load_checkpoint_history(settings.checkpoint_key, settings.origin)
        ledger = Ledger(
            store,
            origin=settings.origin,
            key=checkpoint_key,
            history=history,
            publish=publish,
            witnessed=settings.federation is not None,
        )
        rotation = await ledger.record_key_rotation(clock.now())  # before the new key signs anything
        if rotation is not None:
            log.info("checkpoint key rotation recorded in the ledger", old_key=rotation[0], new_key=rotation[1])
        await ledger.checkpoint()
        if settings.federation is not None and federation is not None:
            witnessing = await Witnessing.start(
                settings, settings.federation, federation, store=store, ledger=ledger, clock=clock, metrics=metrics
            )
        # the listeners trust the peer gateways' TLS anchors too (relays; gateway/core/peertrust.py)
        peer_anchors = b"" if relays is None else relays().tls_anchors_pem()
        checkpointer = asyncio.create_task(
            _checkpoint_loop(ledger, pipeline, witnessing.cosigner if witnessing else None), name="cgw-checkpointer"
        )
        app = build_app(
            RestServices(
                pipeline=pipeline,
                ledger=ledger,
                limits=settings.limits,
                ready=lambda: state.ready,
                aeo=aeo,
                operations=push.operations,
                reload_policies=policies.reload_for,
                reload_trust=trust.reload_for,
                ports=ports,
                exchanges=ExchangeLog(store, clock),
                witness=witnessing.service if witnessing else None,
            )
        )
        soap = SoapServices(pipeline=pipeline, state=state, clock=clock, audience=gateway_issuer(settings.member_id))
        app.add_subapp(SOAP_PATH, build_soap_app(soap))  # SOAP 1.1/1.2 at /soap/v1, WSDL at /soap/v1?wsdl
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS, **runner_options(settings.limits)
        )
        await runner.setup()
        rest_tls = server_tls(settings, peer_anchors)
        site = web.TCPSite(runner, settings.host, settings.rest_port, ssl_context=rest_tls)
        await site.start()
        host, port = _bound_address(runner)
        url = f"https://{host}:{port}"
        grpc_target: str | None = None
        if settings.grpc_port is not None:
            grpc_services = GrpcServices(
                pipeline=pipeline,
                ledger=ledger,
                limits=settings.limits,
                ready=lambda: state.ready,
                aeo=aeo,
                ports=ports,
            )
            grpc_material = grpc_tls(settings, peer_anchors)
            grpc_listener = await start_grpc(grpc_services, settings.host, settings.grpc_port, grpc_material)
            grpc_target = f"{host}:{grpc_listener.port}"
        push.worker.start()  # after the listeners: receipts go out before pushes (crash-safety order)
        if settings.trust_watch_seconds > 0:
            trust_watch = asyncio.create_task(trust.watch(settings.trust_watch_seconds), name="cgw-trust-watch")
        if federation is not None and witnessing is not None and relays is not None:
            listeners = ListenerTrust(relays, rest_tls, grpc_listener, settings.trust_anchors.read_bytes())
            directory = federation.reloader(
                witnessing.require, directory_seen, store=store, clock=clock, metrics=metrics, on_accept=[listeners]
            )
            if settings.trust_watch_seconds > 0:  # the directory is watched at the pace of the trust files
                directory_watch = asyncio.create_task(
                    directory.watch(settings.trust_watch_seconds), name="cgw-directory-watch"
                )
        log.info(
            "gateway listening",
            url=url,
            loop=loop_name(asyncio.get_running_loop()),
            grpc=grpc_target,
            member=settings.member_id,
            ledger_size=await store.ledger_size(),
            **describe(store),
        )
        yield Gateway(
            settings=settings,
            state=state,
            pipeline=pipeline,
            ledger=ledger,
            store=store,
            url=url,
            grpc_target=grpc_target,
            aeo=aeo,
            delivery=push.worker,
            operations=push.operations,
            policies=policies,
            trust=trust,
            ports=ports,
            witnessing=witnessing,
            recovery=recovery,
            directory=directory,
        )
    finally:
        if push is not None:
            push.operations.draining = True  # /readyz answers 503 while the listeners drain
        if grpc_listener is not None:
            await grpc_listener.stop(SHUTDOWN_GRACE_SECONDS)
        if runner is not None:
            await runner.cleanup()
        if policies is not None:
            await policies.stop()
        if push is not None:  # pushes in flight finish (or are re-pushed after the restart)
            await push.stop(SHUTDOWN_GRACE_SECONDS)
        for task in (checkpointer, trust_watch, directory_watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        try:
            stop_errors = await _close_stores(
                store, pipeline=pipeline, ledger=ledger, witnessing=witnessing, aeo=aeo, port_store=port_store
            )
        finally:
            lock.release()  # Rule 3: last
    if stop_errors:  # everything is closed; the stop itself failed (e.g. a full disk): say so, once
        raise stop_errors[0]


def require_free_ports(settings: Settings) -> None:
    """``Unavailable`` when a listener's port is taken (another gateway running?). Bound with SO_REUSEADDR like
    aiohttp, without SO_REUSEPORT: grpc's own bind would share a port another process listens on."""
    for name, port in (("rest_port", settings.rest_port), ("grpc_port", settings.grpc_port)):
        if not port:
            continue  # None: no listener; 0: a free port is picked
        addresses = {
            (info[0], info[4][:2]) for info in socket.getaddrinfo(settings.host, port, type=socket.SOCK_STREAM)
        }
        for family, address in addresses:
            try:
                socket.create_server(address, family=family).close()
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise Unavailable(
                    f"cannot listen on {settings.host}:{port} ({reason}); is another gateway running?",
                    field=f"gateway.{name}",
                ) from exc


def _with_crash_point(settings: Settings) -> Settings:
    """Crash-safety tests only: ``CGW_CRASH_POINT`` is read once, here, and passed down as a setting."""
    if CRASH_ENV in os.environ:
        settings = dataclasses.replace(settings, crash_point=os.environ[CRASH_ENV])
    CrashPoint.parse(settings.crash_point)  # an unknown name stops startup
    return settings


class RelayTransports:
    """``[federation] relay_transport = "grpc"``: relays go over gRPC (``adapters.grpc_api.relay``) to every peer
    whose directory entry names a ``grpc_target``, over REST (``gateway.infra.relay_client``) to the others. Both
    check the peer's receipt and classify its refusals alike (``gateway.core.peerreceipt``)."""

    kind = "relay"

    def __init__(self, *, grpc: GrpcRelayClient, rest: RelayClient) -> None:
        self._grpc = grpc
        self._rest = rest

    async def relay(self, peer: PeerGateway, item: InboxItem) -> DeliveryAttempt:
        if peer.grpc_target:
            return await self._grpc.relay(peer, item)
        return await self._rest.relay(peer, item)

    async def close(self) -> None:
        await self._grpc.close()
        await self._rest.close()


@dataclass(frozen=True, slots=True)
class PushDelivery:
    """The push worker with its deliverers, and the operations service (readiness, metrics, dead letters)."""

    webhook: WebhookDeliverer
    worker: DeliveryWorker
    operations: Operations
    grpc_push: GrpcDeliverer
    relay: RelayClient | RelayTransports | None = None  # gateway-to-gateway relay ([federation]; issue 19)

    @classmethod
    def build(
        cls,
        settings: Settings,
        state: GatewayState,
        store: Store,
        clock: SystemClock,
        metrics: Metrics,
        *,
        rejections: Rejections,
        federation: Federation | None = None,
    ) -> PushDelivery:
        webhook = WebhookDeliverer(
            identity=state.identity,
            source=gateway_issuer(settings.member_id),
            tls=webhook_tls(settings.trust_anchors, settings.delivery.ca_file),
            timeout_seconds=settings.delivery.timeout_seconds,
        )
        soap = SoapDeliverer(
            identity=state.identity,
            trust=lambda: state.require_trust().validator,  # responses are signed by the recipient member
            tls=ClientTls(anchors=settings.trust_anchors),
            timeout_seconds=settings.delivery.timeout_seconds,
        )
        grpc_push = GrpcDeliverer(  # the same signed CloudEvent bytes as the webhook push
            events=webhook.event,
            credentials=delivery_credentials(settings.trust_anchors, settings.delivery.ca_file),
            timeout_seconds=settings.delivery.timeout_seconds,
        )
        deliverers: list[Deliverer] = [webhook, soap, grpc_push]
        relay: RelayClient | RelayTransports | None = None
        if federation is not None:  # relay entries go to the peer gateways (``gateway.delivery.worker``: relay targets)
            relay = RelayClient(
                identity=federation.client, timeout_seconds=settings.delivery.timeout_seconds, clock=clock.now
            )
            if settings.federation is not None and settings.federation.relay_transport == "grpc":
                grpc_relay = GrpcRelayClient(
                    identity=federation.client_pem(), timeout_seconds=settings.delivery.timeout_seconds, clock=clock.now
                )
                relay = RelayTransports(grpc=grpc_relay, rest=relay)
        worker = DeliveryWorker(
            store=store,
            state=state,
            clock=clock,
            deliverers=deliverers,
            config=settings.delivery,
            metrics=metrics,
            crash=CrashPoint.parse(settings.crash_point),
            leases=settings.store.backend == "redis",  # several processes may push from one store
            relayer=relay,
            peers=None if federation is None else federation.peers,
        )
        operations = Operations(
            store=store,
            state=state,
            metrics=metrics,
            dead_letters=DeadLetters(store=store, state=state, clock=clock, rejections=rejections, wake=worker.wake),
            checkpoint_key_loaded=True,  # load_checkpoint_key ran (or startup failed) before this
            clock=clock,
            tls_certificate=load_certificates(settings.tls_cert)[0],  # the one server_tls serves
        )
        return cls(webhook, worker, operations, grpc_push, relay)

    async def stop(self, grace: float) -> None:
        await self.worker.stop(grace)
        await self.webhook.close()
        await self.grpc_push.close()
        if self.relay is not None:
            await self.relay.close()


async def _close_stores(
    store: Store,
    *,
    pipeline: Pipeline | None,
    ledger: Ledger | None,
    witnessing: Witnessing | None,
    aeo: Recognition | None,
    port_store: PortStreamStore | None,
) -> list[GatewayError]:
    """The last stop steps, once nothing writes any more: deferred rejections, the last checkpoint, the stores.
    Each runs whatever the one before met (Rule 2); what failed is returned."""
    errors: list[GatewayError] = []
    if pipeline is not None:  # the last interval's rejection summary (nothing counted is lost), then what waits
        await pipeline.rejections.close()
        await pipeline.deferred_audit.flush()
    if ledger is not None:
        await _stop_step(ledger.checkpoint(), errors)
    if witnessing is not None:
        await witnessing.stop()  # a last round: the published checkpoint covers the whole ledger
    await _stop_step(store.close(), errors)
    if aeo is not None:
        aeo.close()
    if port_store is not None:
        await _stop_step(port_store.close(), errors)
    return errors


async def _stop_step(step: Awaitable[object], errors: list[GatewayError]) -> None:
    """One step of the stop sequence: a failure is logged and kept, and the next steps still run (Rule 2)."""
    try:
        await step
    except GatewayError as exc:
        log.error("stop step failed", code=exc.code, detail=exc.detail)
        errors.append(exc)


async def _checkpoint_loop(ledger: Ledger, pipeline: Pipeline, cosigner: Cosigner | None) -> None:
    """A new checkpoint every interval; with witnesses, each one goes to the peers and is published cosigned."""
    while True:
        await pipeline.deferred_audit.flush()  # rejections a store outage kept (gateway/exchange/deferredaudit.py)
        try:
            if cosigner is not None:
                await cosigner.round()
            else:
                await ledger.checkpoint()
        except GatewayError as exc:
            log.error("checkpoint failed", code=exc.code, detail=exc.detail)
        await asyncio.sleep(CHECKPOINT_INTERVAL_SECONDS)


@dataclass(frozen=True, slots=True)
class Federation:
    """The accepted federation directory in force, and what this gateway does with it beside witnessing: route
    remote recipients to their peer gateway and relay to it with its gateway client certificate (issue 19)."""

    gateway_id: str
    in_force: DirectoryInForce
    client: ClientIdentity | None
    paths: DirectoryPaths

    @classmethod
    def load(cls, settings: Settings, federation: FederationSettings, clock: SystemClock) -> Federation:
        directory = accept_directory(federation.directory, federation.operator_key, settings.data_dir, clock.now())
        client = None
        if federation.client_cert is not None and federation.client_key is not None:
            client = ClientIdentity(federation.client_cert, federation.client_key)
        return cls(federation.gateway_id, DirectoryInForce(directory, clock), client, directory_paths(settings))

    def reloader(
        self,
        require: Callable[[Directory], object],
        seen: FileSignature | None,
        *,
        store: Store,
        clock: SystemClock,
        metrics: Metrics,
        on_accept: Sequence[Callable[[Directory], None]],
    ) -> DirectoryReloader:
        """Hot reload of the directory in force (gateway/ops/directoryadmin.py)."""
        return DirectoryReloader(
            in_force=self.in_force,
            paths=self.paths,
            seen=seen if seen is not None else self.paths.signature(),
            store=store,
            clock=clock,
            require=require,
            on_accept=on_accept,
            metrics=metrics,
        )

    def client_pem(self) -> ClientPem | None:
        """The gateway client certificate and key as PEM bytes (the gRPC relay's channel credentials)."""
        if self.client is None:
            return None
        return ClientPem(cert_pem=self.client.cert.read_bytes(), key_pem=self.client.key.read_bytes())

    def routes(self, recipients: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The remote recipients by peer gateway (``Directory.routes``); ``Unavailable`` once the directory expired."""
        return self.in_force().routes(self.gateway_id, recipients)

    def peers(self) -> Sequence[PeerGateway]:
        return self.in_force().peers_of(self.gateway_id)

    def relays(self) -> Callable[[], PeerTrust]:
        """The peer gateways relays come from (B's side): one ``PeerTrust`` per directory in force (a reloaded
        directory gets a new one, gateway/ops/directoryadmin.py), while it is in force."""
        built = [PeerTrust(self.in_force(), self.gateway_id)]

        def peers() -> PeerTrust:
            directory = self.in_force()  # Unavailable once the directory expired: no relay on stale trust
            if built[0].directory is not directory:
                built[0] = PeerTrust(directory, self.gateway_id)
            return built[0]

        return peers


class ListenerTrust:
    """The peer gateways' TLS anchors in the listeners' handshake trust, renewed when a reloaded directory is put
    in force (``gateway.ops.directoryadmin``: what a reload must keep).

    REST: the new anchors are ADDED to the running ``ssl.SSLContext``'s store (OpenSSL looks them up at each
    handshake). Why not replaced: aiohttp's listening socket keeps the one context it was given, and OpenSSL
    cannot remove a certificate from a store. An anchor a newer directory drops therefore still completes a
    REST handshake until a restart, but ``PeerTrust`` (built from the directory in force) refuses its
    certificates (``PEER_UNTRUSTED``), and member endpoints never accepted a peer's certificate anyway.
    gRPC: the client anchors are REPLACED (federation anchors + the peers of the directory in force) for the next
    handshake (``adapters.grpc_api.server.ServerTrust``)."""

    def __init__(
        self,
        relays: Callable[[], PeerTrust],
        rest: ssl.SSLContext,
        grpc_listener: GrpcListener | None,
        own_anchors: bytes,
    ) -> None:
        self._relays = relays
        self._rest = rest
        self._grpc = grpc_listener
        self._own = own_anchors.rstrip(b"\n") + b"\n"
        self._added = relays().tls_anchors_pem()  # what the listeners were started with

    def __call__(self, directory: Directory) -> None:
        anchors = self._relays().tls_anchors_pem()  # PeerTrust of the directory now in force
        if anchors != self._added and anchors:
            self._rest.load_verify_locations(cadata=anchors.decode("ascii"))  # already known ones are skipped
        self._added = anchors
        if self._grpc is not None:
            self._grpc.trust.update(self._own + anchors)
        log.info("listener TLS anchors renewed", directory_version=directory.version, grpc=self._grpc is not None)


@dataclass(frozen=True, slots=True)
class Witnessing:
    """Cross-witnessing (gateway/ops/witnessing.py): this gateway's witness and its submissions to the peers'."""

    service: WitnessService
    cosigner: Cosigner
    store: WitnessStore
    require: Callable[[Directory], PeerGateway]  # this gateway's entry, as it runs (a reloaded directory too)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        federation: FederationSettings,
        accepted: Federation,
        *,
        store: Store,
        ledger: Ledger,
        clock: SystemClock,
        metrics: Metrics | None = None,
    ) -> Witnessing:
        in_force = accepted.in_force
        directory = in_force()
        key = load_witness_key(federation.witness_key)
        require = functools.partial(
            require_own_entry,
            gateway_id=federation.gateway_id,
            origin=settings.origin,
            checkpoint_vkey=ledger.verifier_key,
            witness_key=key.public_key(),
        )
        me = require(directory)
        witness_store = open_witness_store(settings, store)
        service = WitnessService(
            store=witness_store,
            ledger_store=store,
            directory=in_force,
            name=me.witness.name,
            key=key,
            clock=clock,
            metrics=metrics,
        )
        cosigner = Cosigner(
            ledger=ledger,
            store=store,
            clock=clock,
            directory=in_force,
            gateway_id=federation.gateway_id,
            timeout_seconds=federation.submit_timeout_seconds,
            # the gateway's TLS client identity towards its peers, when configured
            tls=functools.partial(relay_tls, identity=accepted.client),
            metrics=metrics,
        )
        log.info("federation directory accepted", version=directory.version, peers=len(directory.gateways) - 1)
        return cls(service, cosigner, witness_store, require)

    async def stop(self) -> None:
        try:
            await self.cosigner.round()  # each peer request bounded by submit_timeout_seconds
        except GatewayError as exc:
            log.error("last checkpoint round failed", code=exc.code, detail=exc.detail)
        await self.cosigner.close()
        await self.store.close()


def _bound_address(runner: web.AppRunner) -> tuple[str, int]:
    address = runner.addresses[0]
    host, port = str(address[0]), int(address[1])
    return (f"[{host}]" if ":" in host else host), port


def settle_heap() -> None:
    """Once started: collect, then exempt every object that exists now (modules, the registry, policy tables,
    protobuf descriptors, TLS contexts) from the cyclic garbage collector's full passes (``gc.freeze``).

    Those objects live as long as the process; without this, each full pass walked all of them and found
    nothing to free (measured: 30-50 ms every ~1.6 s at 1,000 messages/s, holding up every request in flight:
    the p99 latency). Objects made afterwards are collected as before. The cost: a frozen object that later
    ends up in a garbage reference cycle (the policy set a reload replaces, if it is cyclic) is never freed,
    a bounded leak per reload; reference counting still frees everything acyclic.

    The youngest generation is collected after :data:`YOUNG_GC_THRESHOLD` net allocations instead of 700: a
    submission allocates and frees thousands of objects, and at 700 the collector ran ~40 times per 1,000
    messages to walk the requests in flight and free next to nothing (36 objects; ~6 - 8 us per message). The
    older generations keep their defaults."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM / SIGINT, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_gateway(settings) as gateway:
        reloads: set[asyncio.Task[object]] = set()
        # SIGHUP: re-read, check and swap the trust files (gateway/ops/trustadmin.py), then the policy set
        # (gateway/ops/policyadmin.py), then the federation directory (gateway/ops/directoryadmin.py); each
        # reload is a ledger event, a refused one leaves the old one serving.
        reloaders = [r.reload for r in (gateway.trust, gateway.policies, gateway.directory) if r is not None]

        def on_sighup() -> None:
            for reload in reloaders:
                task: asyncio.Task[object] = asyncio.create_task(reload("sighup"))
                reloads.add(task)
                task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        settle_heap()
        await stop.wait()
        log.info("gateway stopping")
        loop.remove_signal_handler(signal.SIGHUP)
        await asyncio.gather(*reloads, return_exceptions=True)
