"""``customs-gateway samples DIR``: a valid payload file for every message type a member sends, and how to send it.

Rule 1: one source of samples: the payloads come from the builders the demo and the tests use
        (gateway/demo/samples.py, portsamples, programsamples, aeosamples, the demo's CUSCAR filing); nothing here
        writes a business document by hand.
Rule 2: every file is accepted as is by ``customs-gateway send`` against a gateway serving the dev federation
        (``customs-gateway init``), sent in the order of :data:`SAMPLES` with the sender (``--as``), recipients
        (``--to``), programme and message id that DIR/README.txt lists beside it (the same arguments
        :meth:`Sample.send_command` gives the test that sends every file, tests/integration/test_samples_cli.py).
Rule 3: ``alert.gate-out.v1`` and ``port.stream.v1`` are written by the gateway itself (no policy lets a member
        submit them), so they have no file; :data:`GATEWAY_WRITTEN` names them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.demo import aeosamples, programsamples, samples
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes

# The SSTL sample is sent under this id so that the recall sample can name it.
SSTL_MESSAGE_ID = "5a3c1f0e-0000-4000-8000-00000000a001"
GATEWAY_WRITTEN = ("alert.gate-out.v1", "port.stream.v1")
DEFAULT_URL = "https://127.0.0.1:8443"
DEFAULT_FEDERATION = Path("federation")


@dataclass(frozen=True, slots=True)
class Sample:
    message_type: str
    what: str
    sender: str
    to: tuple[str, ...]
    payload: Callable[[], bytes]
    suffix: str = ".json"
    program: str = ""
    message_id: str = ""

    @property
    def filename(self) -> str:
        return self.message_type + self.suffix

    def send_command(
        self, directory: Path, *, url: str = DEFAULT_URL, federation: Path = DEFAULT_FEDERATION
    ) -> list[str]:
        """The ``customs-gateway send`` command line that submits this sample from ``directory``."""
        command = ["customs-gateway", "send", "--url", url, "--federation", str(federation), "--as", self.sender]
        command += ["--type", self.message_type, "--to", ",".join(self.to)]
        command += ["--program", self.program] if self.program else []
        command += ["--id", self.message_id] if self.message_id else []
        return [*command, str(directory / self.filename)]


def _json(build: Callable[[], dict[str, object]]) -> Callable[[], bytes]:
    return lambda: to_bytes(build())


def _cuscar() -> bytes:
    from gateway.demo.edifact import cuscar_filing  # noqa: PLC0415 - the EDIFACT writer only when writing files

    return cuscar_filing()


def _aeo_suspension() -> bytes:
    today = datetime.now(UTC).date()
    return aeosamples.status_update(
        aeosamples.SUSPENDABLE_AEO, "suspended", since=today, eori=aeosamples.SUSPENDABLE_EORI
    )


# In sending order: the gate-out needs the release before it, the recall names the SSTL message.
SAMPLES: tuple[Sample, ...] = (
    Sample(
        "manifest.cargo.v1",
        "a carrier files its cargo manifest with the customs administration",
        "CARRIER-COSCO",
        ("CN-GACC",),
        _json(samples.cargo_manifest),
    ),
    Sample(
        "manifest.cargo.v1",
        "the same filing as a UN/EDIFACT CUSCAR interchange (sent as application/edifact; CUSRES in the inbox)",
        "CARRIER-COSCO",
        ("CN-GACC",),
        _cuscar,
        suffix=".edi",
    ),
    Sample(
        "prearrival.ens.v1",
        "an ICS2 entry summary declaration (F10) filed by the carrier",
        "CARRIER-COSCO",
        ("CN-GACC",),
        _json(samples.entry_summary),
    ),
    Sample(
        "release.notice.v1",
        "customs releases container MSKU9070323 at Rotterdam (version 1 of the B/L's decision)",
        "CN-GACC",
        ("PORT-NLRTM", "CARRIER-COSCO"),
        _json(lambda: portsamples.release_notice("RELEASED", 1, (portsamples.CONTAINERS[0],), reason="sample")),
    ),
    Sample(
        "port.gate-out.v1",
        "the port reports the released container leaving the terminal",
        "PORT-NLRTM",
        ("CN-GACC",),
        _json(lambda: portsamples.gate_out(portsamples.CONTAINERS[0])),
    ),
    Sample(
        "sstl.security-data.v1",
        "SSTL security data on the listed lane CNYTN-NLRTM",
        "CN-GACC",
        ("NL-DOUANE",),
        _json(programsamples.sstl_security_data),
        program="SSTL",
        message_id=SSTL_MESSAGE_ID,
    ),
    Sample(
        "sstl.control-result.v1",
        "the SSTL control result of the same consignment",
        "CN-GACC",
        ("NL-DOUANE",),
        _json(programsamples.sstl_control_result),
        program="SSTL",
    ),
    Sample(
        "csi.examination-request.v1",
        "a CSI examination request from the US to host customs at Yantian",
        "US-CBP",
        ("CN-GACC",),
        _json(programsamples.csi_examination_request),
        program="CSI",
    ),
    Sample(
        "csi.examination-result.v1",
        "host customs answers the CSI examination request",
        "CN-GACC",
        ("US-CBP",),
        _json(programsamples.csi_examination_result),
        program="CSI",
    ),
    Sample(
        "megaport.rpm-alarm.v1",
        "a radiation portal monitor alarm at Rotterdam (Megaport)",
        "PORT-NLRTM",
        ("US-CBP",),
        _json(programsamples.rpm_alarm),
        program="MEGAPORT",
    ),
    Sample(
        "megaport.adjudication.v1",
        "the alarm's adjudication (NORM, released)",
        "US-CBP",
        ("PORT-NLRTM",),
        _json(programsamples.alarm_adjudication),
        program="MEGAPORT",
    ),
    Sample(
        "aeo.status.v1",
        "an EU administration suspends an AEO authorisation",
        "NL-DOUANE",
        ("CN-GACC",),
        _aeo_suspension,
    ),
    Sample(
        "intel.recall.v1",
        f"the originator recalls the SSTL message {SSTL_MESSAGE_ID} (send that one first)",
        "CN-GACC",
        ("NL-DOUANE",),
        _json(lambda: programsamples.intel_recall("CN-GACC", SSTL_MESSAGE_ID)),
    ),
)


def write_samples(directory: Path) -> list[Path]:
    """Write one file per sample and DIR/README.txt (the ``send`` command of each); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in SAMPLES:
        path = directory / sample.filename
        path.write_bytes(sample.payload())
        written.append(path)
    readme = directory / "README.txt"
    readme.write_text(_readme(directory), encoding="utf-8")
    return [*written, readme]


def _readme(directory: Path) -> str:
    lines = [
        "Sample payloads written by `customs-gateway samples`: one per message type a member sends.",
        "Each is accepted as is by a gateway serving the dev federation. From the directory where you ran",
        "`customs-gateway samples`:",
        "",
        f"  customs-gateway init {DEFAULT_FEDERATION}",
        f"  customs-gateway serve --config {DEFAULT_FEDERATION}/gateway.toml    # in another terminal",
        "",
        "then send them in this order (the gate-out follows the release; the recall names the SSTL message).",
        "--as is the sending member, --to the recipients its policies allow (policies/*.cedar); add",
        "--transport grpc --url 127.0.0.1:8444 to send over gRPC instead of REST.",
    ]
    for sample in SAMPLES:
        lines += ["", f"# {sample.filename}: {sample.what}", shlex.join(sample.send_command(directory))]
    lines += [
        "",
        f"Not here: {', '.join(GATEWAY_WRITTEN)} are written by the gateway itself (no member sends them).",
        "",
    ]
    return "\n".join(lines)
