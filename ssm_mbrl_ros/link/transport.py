"""MAVLink transport: a pymavlink connection that listens on loopback unless told otherwise, talks to one peer,
and signs its traffic when given a key.

Connection URLs:

    udpin:HOST:PORT       listen on HOST:PORT (PX4 SITL sends to 14540); the first valid peer is locked in
    udpout:HOST:PORT      send to HOST:PORT from a socket bound to 127.0.0.1 (or, when HOST is not a loopback
                          address, to the one local interface that routes there); only HOST:PORT is listened to
    serial:DEVICE[:BAUD]  a serial port (default 921600 baud), e.g. serial:/dev/ttyACM0:57600

A non-loopback UDP address is an explicit choice (`allow_remote=True`; the CLI's --allow-remote): with it, a
MAVLink 2 signing key is strongly recommended (docs/px4.md, "Securing the link").

Peer locking (`PeerGuard`): pymavlink's UDP server answers every address that ever sent it a datagram, and parses
datagrams from anyone. The guard drops datagrams from any address but the peer's once the peer is locked (udpout:
the destination, at once; udpin: the address of the first message the owner calls valid) and counts them.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import time
import types

from ssm_mbrl_ros.core.config import ConfigError

os.environ.setdefault("MAVLINK20", "1")  # before pymavlink picks its wire protocol
from pymavlink import mavutil  # noqa: E402

mavutil.set_dialect("common")  # every link speaks PX4's common dialect (pymavlink defaults to ardupilotmega)


def parse_url(url: str) -> tuple[str, int]:
    """Validate a connection URL; returns (pymavlink device string, baud). Raises ConfigError."""
    if url.startswith("udp://"):
        url = "udpin:" + url[len("udp://"):]
    kind, _, rest = url.partition(":")
    if kind in ("udpin", "udpout"):
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"link url {url!r}: expected {kind}:HOST:PORT with PORT in 0..65535")
        resolve(host, url)
        return f"{kind}:{host}:{port}", 0
    if kind == "serial":
        dev, baud = rest, ""
        if ":" in rest and rest.rsplit(":", 1)[1].isdigit():
            dev, baud = rest.rsplit(":", 1)
        if not dev:
            raise ConfigError(f"link url {url!r}: expected serial:DEVICE[:BAUD]")
        return dev, int(baud) if baud else 921600
    raise ConfigError(f"link url {url!r}: expected udpin:HOST:PORT, udpout:HOST:PORT or serial:DEVICE[:BAUD]")


def resolve(host: str, url: str = "") -> str:
    """IPv4 address of host (a name or a dotted quad); ConfigError naming the URL when it is not one."""
    try:
        addr = socket.gethostbyname(host)
        ipaddress.IPv4Address(addr)
    except (OSError, UnicodeError, ValueError):
        raise ConfigError(f"link url {url or host!r}: {host!r} is not a valid IPv4 address or known host name") \
            from None
    return addr


def _local_address_towards(peer: tuple[str, int]) -> str:
    """The one local interface address that routes to peer (127.0.0.1 for a loopback peer): a sending socket is
    bound there, never to every interface."""
    if ipaddress.IPv4Address(peer[0]).is_loopback:
        return "127.0.0.1"
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(peer)  # UDP connect sends nothing: it only picks the route
        return probe.getsockname()[0]
    except OSError as e:
        raise ConfigError(f"no route to {peer[0]}:{peer[1]} ({e.strerror or e})") from None
    finally:
        probe.close()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8 addresses and names that resolve there (localhost)."""
    return ipaddress.IPv4Address(resolve(host)).is_loopback


def udp_host(url: str) -> str | None:
    """The HOST of a udpin:/udpout: URL (None for serial)."""
    device, _ = parse_url(url)
    kind, _, rest = device.partition(":")
    return rest.rpartition(":")[0] if kind in ("udpin", "udpout") else None


class PeerGuard:
    """Drops UDP datagrams from every address but the locked peer's and counts them (installed on a connection)."""

    def __init__(self, conn, peer: tuple[str, int] | None = None):
        self.conn = conn
        self.peer = peer
        self.foreign_datagrams = 0  # datagrams from other addresses after the lock, dropped unparsed
        self.last_address: tuple[str, int] | None = None  # sender of the datagram being parsed now
        conn.recv = types.MethodType(self._recv, conn)
        if conn.udp_server:
            conn.clients.clear()

    def lock(self, address: tuple[str, int] | None = None) -> None:
        """Lock onto address (default: the sender of the datagram just parsed); no-op once locked."""
        if self.peer is None and (address or self.last_address) is not None:
            self.peer = address or self.last_address
            if self.conn.udp_server:
                self.conn.clients.clear()
                self.conn.clients.add(self.peer)
                self.conn.clients_last_alive[self.peer] = time.time()

    def _recv(self, conn, n=None):
        try:
            data, addr = conn.port.recvfrom(65535)
        except OSError:  # EAGAIN on a non-blocking socket, or ECONNREFUSED from a previous send
            return b""
        if self.peer is not None and addr != self.peer:
            self.foreign_datagrams += 1
            return b""
        self.last_address = addr
        return data


def check_link_host(url: str, allow_remote: bool = False) -> str | None:
    """The UDP host of a link url (None for serial), after refusing a non-loopback one unless allow_remote."""
    host = udp_host(url)
    if host is not None and not is_loopback(host) and not allow_remote:
        raise ConfigError(f"link url {url!r}: {host} is not a loopback address; talking over a network is an explicit "
                          "choice (--allow-remote / allow_remote: true), and it should be signed (a signing key)")
    return host


def open_connection(url: str, source_system: int, source_component: int, signing_key: bytes | None = None,
                    allow_remote: bool = False):
    """Open a pymavlink connection (MAVLink 2, common dialect): loopback unless allow_remote, peer-locked (UDP),
    optionally signed (32-byte key: unsigned or wrongly signed messages are rejected and counted)."""
    device, baud = parse_url(url)
    host = check_link_host(url, allow_remote)
    if signing_key is not None and len(signing_key) != 32:
        raise ConfigError(f"signing key must be 32 bytes (64 hex digits), got {len(signing_key)} bytes")
    kw = dict(baud=baud) if baud else {}
    try:
        conn = mavutil.mavlink_connection(device, dialect="common", source_system=source_system,
                                          source_component=source_component, autoreconnect=False, **kw)
    except OSError as e:
        raise ConfigError(f"link url {url!r}: cannot open it ({e.strerror or e})") from None
    if host is not None:
        peer = None
        # pymavlink never binds a udpout socket (it would answer from every interface)
        if device.startswith("udpout"):
            port = int(device.rpartition(":")[2])
            peer = (resolve(host), port)
            conn.port.bind((_local_address_towards(peer), 0))
        conn.peer_guard = PeerGuard(conn, peer)
    else:
        conn.peer_guard = None
    if signing_key is not None:
        conn.setup_signing(signing_key, sign_outgoing=True, allow_unsigned_callback=lambda *_: False)
    return conn


SIGNING_KEY_ENV = "MAVLINK_SIGNING_KEY"  # 64 hex digits; read when no key is given explicitly


def signing_key(hex_key: str = "", key_file: str | None = None, source: str = "signing key") -> bytes | None:
    """The 32-byte MAVLink 2 signing key from hex_key, else key_file (64 hex digits), else $MAVLINK_SIGNING_KEY;
    None when none is set. ConfigError naming the source when it is not 64 hex digits."""
    if not hex_key and key_file:
        try:
            with open(key_file) as f:
                hex_key, source = f.read().strip(), key_file
        except OSError as e:
            raise ConfigError(f"{key_file}: cannot read the signing key ({e.strerror})") from None
    if not hex_key and os.environ.get(SIGNING_KEY_ENV):
        hex_key, source = os.environ[SIGNING_KEY_ENV].strip(), f"${SIGNING_KEY_ENV}"
    if not hex_key:
        return None
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{source}: expected 64 hex digits (a 32-byte MAVLink 2 signing key)")
    return key


def bound_port(conn) -> int:
    """Local UDP port of a pymavlink UDP connection (after binding port 0)."""
    return conn.port.getsockname()[1]


def local_address(conn) -> str:
    """'HOST:PORT' the connection's UDP socket is bound to, or the serial device."""
    if hasattr(conn, "port") and hasattr(conn.port, "getsockname"):
        host, port = conn.port.getsockname()[:2]
        return f"{host}:{port}"
    return str(getattr(conn, "device", "serial"))


def link_security_counts(conn) -> dict[str, int]:
    """Rejected traffic: foreign datagrams (peer lock) and unsigned / badly signed messages (signing)."""
    out = {"foreign_datagrams": conn.peer_guard.foreign_datagrams if getattr(conn, "peer_guard", None) else 0}
    signing = getattr(conn.mav, "signing", None)
    if signing is not None and signing.secret_key is not None:
        out.update(signing_rejected=signing.reject_count, signing_bad=signing.badsig_count)
    return out
