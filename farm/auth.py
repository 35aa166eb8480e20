"""CURVE encryption and ZAP authentication for the farm (pyzmq's zmq.auth does the work).

``synthfarm keys init DIR`` writes:

    DIR/coordinator.key, coordinator.key_secret    the coordinator's pair (workers and clients need .key)
    DIR/worker.key, worker.key_secret              a pair for workers
    DIR/client.key, client.key_secret              a pair for clients (submit, status, the panel)
    DIR/authorized/workers/*.key                   public keys allowed on the workers' socket
    DIR/authorized/clients/*.key                   public keys allowed on the clients' and events' sockets
    DIR/authorized/transfer/*.key                  public keys allowed to move files (workers and clients)

Secret files are created readable by their owner only. Workers and clients are told a keys folder and
use ``<role>.key_secret`` and ``coordinator.key`` from it; copy just those files to other machines.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

DOMAINS = {"workers": ("workers",), "clients": ("clients",), "events": ("clients",), "transfer": ("workers", "clients")}


class KeysError(Exception):
    pass


def init_keys(directory: Path) -> list[Path]:
    """Create the coordinator, worker and client pairs and the authorized folders. Refuses to overwrite."""
    directory = Path(directory)
    if (directory / "coordinator.key_secret").exists():
        raise KeysError(f"{directory} already holds keys; use another folder or remove them first")
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for name in ("coordinator", "worker", "client"):
        public, secret = zmq.auth.create_certificates(str(directory), name)
        os.chmod(secret, 0o600)
        made += [Path(public), Path(secret)]
    for role, allowed in (("workers", ["worker"]), ("clients", ["client"]), ("transfer", ["worker", "client"])):
        target = directory / "authorized" / role
        target.mkdir(parents=True, exist_ok=True)
        for name in allowed:
            shutil.copy(directory / f"{name}.key", target / f"{name}.key")
    return made


def _pair(path: Path) -> tuple[bytes, bytes]:
    if not path.is_file():
        role = path.name.split(".")[0]
        raise KeysError(f"{path} not found: a {role} needs {role}.key_secret (and coordinator.key) from the folder "
                        "made by `synthfarm keys init DIR` on the coordinator's machine; copy those two files here")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as err:
        raise KeysError(f"{path} is not a key file made by `synthfarm keys init` ({err})") from None
    if secret is None and path.name.endswith("_secret"):
        raise KeysError(f"{path} holds no secret key; use the .key_secret file from `synthfarm keys init`")
    return public, secret


def check_keys(keys: Path, role: str) -> None:
    """Raise KeysError (saying which file is missing and where it comes from) unless ``role`` can use ``keys``."""
    _pair(Path(keys) / f"{role}.key_secret")
    _pair(Path(keys) / "coordinator.key")


def secure_server(sock: zmq.Socket, keys: Path, domain: str) -> None:
    public, secret = _pair(Path(keys) / "coordinator.key_secret")
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True


def secure_client(sock: zmq.Socket, keys: Path, role: str) -> None:
    """A worker's or client's socket: its own pair, and the coordinator's public key."""
    public, secret = _pair(Path(keys) / f"{role}.key_secret")
    server_public, _ = _pair(Path(keys) / "coordinator.key")
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, server_public


def authorized_roles(keys: Path) -> dict[str, set[str]]:
    """Public key (Z85 text, as ZAP reports it in User-Id) -> the roles it is authorized for."""
    roles: dict[str, set[str]] = {}
    for role, folder in (("worker", "workers"), ("client", "clients")):
        for path in sorted((Path(keys) / "authorized" / folder).glob("*.key")):
            public, _ = zmq.auth.load_certificate(str(path))
            roles.setdefault(public.decode("ascii"), set()).add(role)
    return roles


def start_authenticator(context: zmq.Context, keys: Path) -> ThreadAuthenticator:
    """ZAP for every domain: only the public keys in DIR/authorized/<role>/ get in."""
    auth = ThreadAuthenticator(context)
    auth.start()
    for domain, roles in DOMAINS.items():
        folder = Path(keys) / "authorized" / (roles[0] if len(roles) == 1 else "transfer")
        auth.configure_curve(domain=domain, location=str(folder))
    return auth
