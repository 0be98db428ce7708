"""Who may watch the live view (``--serve``): the address it listens on, the access token,
the Host header check, and the addresses 0.0.0.0 means on this machine.

A bare port listens on 127.0.0.1 only; 0.0.0.0 (or any address other machines reach) needs a
token, the Jupyter way: printed once in the URL, then kept by the browser as a cookie. The
Host header check stops DNS rebinding (a web page elsewhere that points its own name at this
machine names its own site in Host).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import string
import struct
import sys
from dataclasses import dataclass
from urllib.parse import unquote

from segrt.errors import SegrtError
from segrt.files import shown


def parse_address(value: str) -> tuple[str, int]:
    """'PORT', ':PORT' or 'HOST:PORT' → (host, port). Without a host: 127.0.0.1, this machine
    only; every interface is 0.0.0.0, spelled out."""
    host, _, port = value.rpartition(":")
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise SegrtError(f"--serve {shown(repr(value), 60)}: expected PORT or HOST:PORT, e.g. 8080 (this machine "
                         "only) or 0.0.0.0:8080 (the network, with an access token)")
    return host or "127.0.0.1", int(port)


TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_.~")  # what a URL carries unescaped
MIN_TOKEN = 16  # a random one of 16 holds 96 bits: beyond guessing over HTTP


def check_token(token: str) -> str:
    if len(token) < MIN_TOKEN or not set(token) <= TOKEN_CHARS:
        raise SegrtError(f"--serve-token: use {MIN_TOKEN} or more letters, digits, '-', '_', '.' or '~', e.g. "
                         "python -c 'import secrets; print(secrets.token_urlsafe())'")
    return token


SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def interface_addresses() -> list[str]:
    """This machine's IPv4 addresses, 127.0.0.1 first: where 0.0.0.0 listens. On Linux every
    interface's address; elsewhere the one the default route leaves by."""
    found = {"127.0.0.1"}
    if sys.platform.startswith("linux"):
        import fcntl

        for _, name in socket.if_nameindex():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue  # an interface without an IPv4 address
                found.add(socket.inet_ntoa(packed[20:24]))
    if len(found) == 1:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect(("192.0.2.1", 9))  # a UDP connect sends nothing; it only picks the route
                found.add(s.getsockname()[0])
            except OSError:
                pass  # no route: loopback only
    found.discard("0.0.0.0")
    return sorted(found, key=lambda a: (a != "127.0.0.1", ipaddress.ip_address(a)))


def _host_allowed(header: str | None, names: frozenset[str]) -> bool:
    """The Host header names this server: an IP address (no DNS, so no rebinding) or one of
    ``names``, with or without the port."""
    value = (header or "").strip().lower()
    if value.startswith("["):  # an IPv6 address: [::1]:8080
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else rest or "0"
    else:
        host, colon, port = value.partition(":")
        port = port if colon else "0"
    if not (port.isascii() and port.isdigit()):
        return False  # not HOST[:PORT] (127.0.0.1:80@evil.example)
    if host.rstrip(".") in names:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _field(text: str | None, sep: str, name: str) -> str | None:
    """The value of ``name`` in 'a=1&b=2' (sep '&') or a Cookie header 'a=1; b=2' (sep ';')."""
    for part in (text or "").split(sep):
        key, eq, value = part.strip().partition("=")
        if key == name and eq:
            return value
    return None


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())  # constant time


@dataclass(frozen=True)
class Access:
    """Who may watch a server listening on ``hosts`` at ``port``: requests whose Host header is
    an IP address or one of ``names``, carrying ``token`` (None: none needed) as ``?token=`` or
    as the cookie the first such request sets (named for the port: cookies ignore ports)."""

    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 0
    names: frozenset[str] = frozenset({"localhost"})
    token: str | None = None
    token_given: bool = False  # by --serve-token: the printed URLs show '...' (as Jupyter does)
    everywhere: bool = False   # bound to 0.0.0.0

    @classmethod
    def listening(cls, bound: str, port: int, asked: str, token: str | None) -> Access:
        """The access for a server bound to IP ``bound`` (``asked``: the host as the user gave
        it); ``token``: the user's, else one made where other machines can connect."""
        everywhere = bound == "0.0.0.0"
        public = everywhere or not ipaddress.ip_address(bound).is_loopback
        names = {"localhost", asked.lower()}
        if everywhere:  # the names this machine goes by on its network
            names |= {socket.gethostname().lower(), socket.gethostname().lower() + ".local"}
        made = secrets.token_urlsafe(24) if public and token is None else None
        hosts = interface_addresses() if everywhere else [bound]
        return cls(tuple(hosts), port, frozenset(names), token or made, token is not None, everywhere)

    @property
    def cookie(self) -> str:
        return f"segrt_token_{self.port}"

    def banner(self) -> str:
        """What ``segrt run`` prints once: each address it listens on, with the token."""
        query = "" if self.token is None else "?token=" + ("..." if self.token_given else self.token)
        urls = [f"http://{h}:{self.port}/{query}" for h in self.hosts]
        if not self.everywhere and ipaddress.ip_address(self.hosts[0]).is_loopback:
            return (f"live view: {urls[0]} (this machine only; --serve 0.0.0.0:{self.port} shares it with the "
                    "network)")
        where = "every interface" if self.everywhere else self.hosts[0]
        return f"live view on {where}, for whoever has the token:\n" + "\n".join(f"  {u}" for u in urls)

    def check(self, host: str | None, query: str, cookies: str | None) -> tuple[str | None, bool]:
        """(why the request is refused, or None; whether to set the token cookie). The reasons
        are fixed text: nothing the client sent is echoed."""
        if not _host_allowed(host, self.names):
            return "Host header does not name this server; open the address segrt printed", False
        if self.token is None:
            return None, False
        given = _field(query, "&", "token")
        if given is not None:
            return (None, True) if _same(unquote(given), self.token) else ("wrong token", False)
        if _same(_field(cookies, ";", self.cookie) or "", self.token):
            return None, False
        return "this live view needs its token: open the URL segrt printed (ending in ?token=...)", False
