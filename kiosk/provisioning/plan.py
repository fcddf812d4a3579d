"""The provisioning plan: ordered, idempotent steps from a blank token to a registered terminal.

Owns what each step checks to know it is already done (so running provision twice changes
nothing the second time), the order of the steps, and the certificate issuers: a file the
operator's CA issued (--cert) or the development CA of a simulated setup, and which slot's
blank token to initialise (token_decision). Token access goes through the StationToken and
TokenInitialiser interfaces (drivers.token.csr.TokenEnrolment and
drivers.token.initialise.TokenSlots implement them).
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.errors import KioskError
from kiosk.message_text import MessageText
from kiosk.provisioning.archive import archive_certificate
from kiosk.sm2 import SM2_SM3_SIGNATURE_OID
from kiosk.station_keys import certificate_spki, request_spki


class ProvisioningError(KioskError):
    """A step cannot be done; the message says what the technician does next."""


class StationToken(Protocol):
    label: str

    def present(self) -> bool: ...

    def key_facts(self) -> dict[str, object] | None: ...

    def generate_key(self) -> None: ...

    def certificate_pem(self) -> bytes | None: ...

    def make_csr(self, *, institution_no: str, terminal_id: str, station_name: str) -> bytes: ...

    def store_certificate(self, cert_pem: bytes) -> None: ...


class TokenSlot(Protocol):
    """One slot holding a token, as the initialise step sees it."""

    @property
    def slot_id(self) -> int: ...

    @property
    def description(self) -> str: ...

    @property
    def label(self) -> str: ...  # "" for a blank token

    @property
    def initialised(self) -> bool: ...

    @property
    def user_pin_set(self) -> bool: ...


class TokenInitialiser(Protocol):
    module_path: str

    def slots(self) -> Sequence[TokenSlot]: ...

    def initialise(self, slot_id: int, *, label: str, so_pin: str, user_pin: str) -> None: ...

    def set_user_pin(self, label: str, *, so_pin: str, user_pin: str) -> None: ...


class CertificateIssuer(Protocol):
    def issue(self, csr_pem: bytes) -> bytes:
        """The PEM certificate for this request, or ProvisioningError saying how to get it."""
        ...


@dataclass(frozen=True)
class Identity:
    institution_no: str
    terminal_id: str
    station_name: str


class CertificateFile:
    """A certificate the operator's CA issued for our request, given with --cert."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def issue(self, csr_pem: bytes) -> bytes:
        try:
            pem = self.path.read_bytes()
            certificate = x509.load_pem_x509_certificate(pem)
        except OSError as exc:
            raise ProvisioningError(
                MessageText(
                    "cannot read --cert {path}: {problem}", path=self.path, problem=exc.strerror
                )
            ) from None
        except ValueError:
            raise ProvisioningError(
                MessageText("--cert {path} is not a PEM certificate", path=self.path)
            ) from None
        request = x509.load_pem_x509_csr(csr_pem)
        if certificate_spki(certificate) != request_spki(request):
            raise ProvisioningError(
                MessageText(
                    "--cert {path} was issued for another key, not this token's request: give the "
                    "certificate issued for the CSR this terminal wrote",
                    path=self.path,
                )
            )
        return certificate.public_bytes(serialization.Encoding.PEM)


class AwaitingCertificate:
    """No issuer yet: the CSR is written; the operator's CA must issue the certificate."""

    def __init__(self, csr_path: Path) -> None:
        self.csr_path = csr_path

    def issue(self, csr_pem: bytes) -> bytes:
        raise ProvisioningError(
            MessageText(
                "certificate request written to {csr_path}: send it to the operator's CA, then run "
                "provision again with --cert FILE (or --dev-ca DIR on a bench)",
                csr_path=self.csr_path,
            )
        )


class DevCertificateAuthority:
    """A development CA in a directory, for simulated terminals and benches; never production.

    It signs with its own P-256 key whatever the station key's type (P-256 or RSA-2048); an
    SM2 station's certificate comes from an SM2 CA (cryptography cannot sign SM2).

    Its key is a plain file (mode 600): it stands in for the operator's CA, which a real
    terminal never holds.
    """

    def __init__(self, directory: Path, *, days: int = 730) -> None:
        self.directory = directory
        self.days = days
        self.key_path = directory / "dev-ca-key.pem"
        self.cert_path = directory / "dev-ca.pem"
        if not self.key_path.exists():
            self._create()

    def _create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kiosk development CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.key_path.touch(mode=0o600)
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    def issue(self, csr_pem: bytes) -> bytes:
        request = x509.load_pem_x509_csr(csr_pem)
        if request.signature_algorithm_oid.dotted_string == SM2_SM3_SIGNATURE_OID:
            raise ProvisioningError(
                "the development CA issues P-256 and RSA certificates only: have the operator's"
                " SM2 CA issue this request (docs/provisioning.md) and give it with --cert"
            )
        if not request.is_signature_valid:
            raise ProvisioningError("the certificate request's signature does not verify")
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_pem)
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(ca.subject)
            .public_key(request.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class StepResult:
    step_id: str
    title: str
    status: str  # "done" (this run did it) or "already done"
    detail: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.step_id,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Step:
    step_id: str
    title: str
    already_done: Callable[[], str | None]  # the detail when done, else None
    run: Callable[[], str]  # does it; returns the detail


@dataclass
class ProvisioningPlan:
    steps: list[Step] = field(default_factory=list)

    def add(
        self, step_id: str, title: str, already_done: Callable[[], str | None]
    ) -> Callable[[Callable[[], str]], Callable[[], str]]:
        def register(run: Callable[[], str]) -> Callable[[], str]:
            self.steps.append(Step(step_id, title, already_done, run))
            return run

        return register

    def run(self, progress: Callable[[int, int, Step], None] | None = None) -> list[StepResult]:
        results = []
        for index, step in enumerate(self.steps, start=1):
            if progress is not None:
                progress(index, len(self.steps), step)
            done = step.already_done()
            if done is not None:
                results.append(StepResult(step.step_id, step.title, "already done", done))
                continue
            results.append(StepResult(step.step_id, step.title, "done", step.run()))
        return results


@dataclass(frozen=True)
class TokenDecision:
    # "ready": the labelled token is there with its user PIN; "set_user_pin": it is there
    # but an earlier run stopped before its user PIN was set; "initialise": the slot's
    # blank token is to become the station token.
    action: Literal["ready", "set_user_pin", "initialise"]
    slot: TokenSlot


def token_decision(slots: Sequence[TokenSlot], label: str, *, module: str) -> TokenDecision:
    """Which token provisioning uses or initialises; ProvisioningError when it cannot choose.

    A token with the label wins (blank ones beside it are left alone); otherwise exactly one
    blank token must be present, since initialising one erases whatever it held.
    """
    labelled = [slot for slot in slots if slot.initialised and slot.label == label]
    if len(labelled) > 1:
        raise ProvisioningError(
            MessageText(
                "{count} tokens are labelled '{label}': unplug all but the station's USBKey and "
                "run provision again",
                count=len(labelled),
                label=label,
            )
        )
    if labelled:
        action: Literal["ready", "set_user_pin"] = (
            "ready" if labelled[0].user_pin_set else "set_user_pin"
        )
        return TokenDecision(action, labelled[0])
    blank = [slot for slot in slots if not slot.initialised]
    if len(blank) > 1:
        where = ", ".join(f"{slot.slot_id} ({slot.description})" for slot in blank)
        raise ProvisioningError(
            MessageText(
                "{count} blank tokens are plugged in (slots {where}): unplug all but the station's "
                "USBKey and run provision again",
                count=len(blank),
                where=where,
            )
        )
    if blank:
        return TokenDecision("initialise", blank[0])
    others = sorted({f"'{slot.label}'" for slot in slots})
    if others:
        raise ProvisioningError(
            MessageText(
                "no token labelled '{label}' and no blank token in {module} (tokens present: "
                "{others}): give the station token's label with --label, or plug in a blank USBKey",
                label=label,
                module=module,
                others=", ".join(others),
            )
        )
    raise ProvisioningError(
        MessageText(
            "no token in {module}: plug in the station's USBKey (blank or labelled '{label}'), or "
            "give --module for its vendor's PKCS#11 module (for a bench, add --softhsm-dir DIR)",
            module=module,
            label=label,
        )
    )


def token_initialisation_step(
    plan: ProvisioningPlan,
    initialiser: TokenInitialiser,
    *,
    label: str,
    so_pin: Callable[[], str],
    user_pin: Callable[[], str],
) -> None:
    """Add the step that initialises the one blank token (or finds the labelled one).

    so_pin is called only when a token must be initialised, so a terminal whose token is
    ready never needs the SO PIN.
    """

    def decide() -> TokenDecision:
        return token_decision(initialiser.slots(), label, module=initialiser.module_path)

    def already_done() -> str | None:
        decision = decide()
        if decision.action == "ready":
            return MessageText(
                "token '{label}' initialised already (slot {slot})",
                label=label,
                slot=decision.slot.slot_id,
            )
        return None

    @plan.add("initialise", "Blank token initialised as the station token", already_done)
    def initialise() -> str:
        decision = decide()
        if decision.action == "ready":
            return MessageText(
                "token '{label}' initialised already (slot {slot})",
                label=label,
                slot=decision.slot.slot_id,
            )
        if decision.action == "set_user_pin":
            initialiser.set_user_pin(label, so_pin=so_pin(), user_pin=user_pin())
            return MessageText(
                "user PIN set on token '{label}' (slot {slot})",
                label=label,
                slot=decision.slot.slot_id,
            )
        slot_id = decision.slot.slot_id
        initialiser.initialise(slot_id, label=label, so_pin=so_pin(), user_pin=user_pin())
        return MessageText(
            "blank token in slot {slot_id} initialised as '{label}' (SO PIN and user PIN set)",
            slot_id=slot_id,
            label=label,
        )


def certificate_problem(
    cert_pem: bytes | None,
    identity: Identity,
    public_key_info: bytes,
    *,
    renew_days: int,
    now: dt.datetime,
) -> str | None:
    """Why the token's certificate needs (re)issuing, or None when it is good as it is."""
    if cert_pem is None:
        return "no certificate on the token"
    certificate = x509.load_pem_x509_certificate(cert_pem)
    if certificate_spki(certificate) != public_key_info:
        return "the certificate on the token is for another key"
    numbers = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not numbers or numbers[0].value != identity.institution_no:
        return "the certificate is for another 机构号"
    if not names or names[0].value != f"{identity.institution_no}-{identity.terminal_id}":
        return "the certificate is for another terminal"
    if certificate.issuer == certificate.subject:
        return "the certificate is self-signed, not issued by a CA"
    if (certificate.not_valid_after_utc - now).days < renew_days:
        return "the certificate expires soon"
    return None


def station_certificate_step(
    plan: ProvisioningPlan,
    token: StationToken,
    identity: Identity,
    issuer: CertificateIssuer,
    *,
    csr_path: Path,
    data_dir: Path,
    renew_days: int,
    force: bool = False,
) -> None:
    """Add the CSR + issue + import step (also the whole of a renewal when force is set)."""

    def public_key_info() -> bytes:
        facts = token.key_facts()
        if facts is None:
            raise ProvisioningError(
                MessageText("token '{label}' has no station key yet", label=token.label)
            )
        info = facts["public_key_info"]
        assert isinstance(info, bytes)
        return info

    def already_done() -> str | None:
        if force:
            return None
        cert = token.certificate_pem()
        problem = certificate_problem(
            cert, identity, public_key_info(), renew_days=renew_days, now=dt.datetime.now(dt.UTC)
        )
        if problem is None and cert is not None:
            archive_certificate(data_dir, cert)
            return MessageText("certificate valid until {not_after}", not_after=_not_after(cert))
        return None

    @plan.add("certificate", "Station certificate: request, issue, import", already_done)
    def issue_and_import() -> str:
        old = token.certificate_pem()
        if old is not None:
            # Records signed with it name it by hash; the archive keeps them verifiable.
            archive_certificate(data_dir, old)
        csr = token.make_csr(
            institution_no=identity.institution_no,
            terminal_id=identity.terminal_id,
            station_name=identity.station_name,
        )
        csr_path.parent.mkdir(parents=True, exist_ok=True)
        csr_path.write_bytes(csr)
        cert = issuer.issue(csr)
        token.store_certificate(cert)
        archive_certificate(data_dir, cert)
        return MessageText(
            "certificate imported, valid until {not_after} (request in {csr_path})",
            not_after=_not_after(cert),
            csr_path=csr_path,
        )


def _not_after(cert_pem: bytes) -> str:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc.strftime("%Y-%m-%d")
