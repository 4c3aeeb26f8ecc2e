"""``explorer serve``: the app, on loopback unless told otherwise.

`panel serve` (Bokeh's server) listens on every network interface when no ``--address`` is given (Tornado's
``bind_sockets(address=None)``), and its websocket origin check only stops browsers, not a script that sends
any Origin header it likes: anyone who reaches the port can drive the app, start training jobs and write to
the store. ``explorer serve`` runs ``panel serve explorer/app.py --address 127.0.0.1`` instead and passes the
usual options through (``--address``, ``--port``, ``--allow-websocket-origin``, ``--basic-auth``,
``--cookie-secret``, ``--oauth-provider`` …; anything after ``--`` goes to ``panel serve`` as is).

`warn_if_exposed` is what the app calls when it is served, however it was started: it looks at the sockets the
server process listens on (Linux's /proc, else the ``panel serve`` command line) and logs a warning when one is
not on loopback and neither basic auth nor OAuth is configured. No UI import at module level.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path

from explorer.cli import add_data_option

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 5006
APP = Path(__file__).resolve().parent / "app.py"
log = logging.getLogger("explorer.serve")
_warned = False  # once per server process (app.py runs once per session)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the app (on 127.0.0.1 unless --address is given)",
        description="Serve the app with `panel serve`, listening on 127.0.0.1 unless --address is given. To let "
        "other machines in, see README, 'Serving safely': --address 0.0.0.0 with --allow-websocket-origin, and "
        "--basic-auth with --cookie-secret or --oauth-provider, or a reverse proxy.",
        epilog="Options after -- go to `panel serve` unchanged, e.g. `explorer serve -- --num-threads 4`.")
    parser.add_argument("--address", default=DEFAULT_ADDRESS,
                        help=f"address to listen on (default {DEFAULT_ADDRESS}: this machine only; 0.0.0.0: all "
                        "interfaces)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--show", action="store_true", help="open the app in a browser")
    parser.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                        help="a host browsers may load the app from (repeatable); needed for any address other "
                        "than localhost")
    parser.add_argument("--basic-auth", metavar="PASSWORD|FILE", help="require a password (Panel's basic auth)")
    parser.add_argument("--cookie-secret", metavar="SECRET", help="secret that signs the login cookies")
    parser.add_argument("--oauth-provider", metavar="NAME", help="log in through an OAuth provider (Panel's OAuth; "
                        "see `panel serve --help` for its --oauth-* options, passed after --)")
    parser.add_argument("--dry-run", action="store_true", help="print the `panel serve` command and exit")
    parser.add_argument("panel_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    add_data_option(parser)
    parser.set_defaults(func=_serve)


def panel_command(args) -> list[str]:
    """The `python -m panel serve …` command line for parsed ``explorer serve`` arguments."""
    cmd = [sys.executable, "-m", "panel", "serve", str(APP), "--address", args.address, "--port", str(args.port)]
    if args.show:
        cmd.append("--show")
    for origin in args.allow_websocket_origin:
        cmd += ["--allow-websocket-origin", origin]
    for option in ("basic_auth", "cookie_secret", "oauth_provider"):
        value = getattr(args, option)
        if value is not None:
            cmd += ["--" + option.replace("_", "-"), value]
    extra = list(args.panel_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return cmd + extra


def _serve(args) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {args.port}")
    cmd = panel_command(args)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    authenticated = bool(args.basic_auth or args.oauth_provider or "--basic-auth" in cmd or "--oauth-provider" in cmd)
    message = exposure_warning([args.address], authenticated, args.port, args.allow_websocket_origin)
    if message:
        print(f"explorer: warning: {message}", file=sys.stderr)
    print(f"explorer: serving on http://{_host_for_url(args.address)}:{args.port}/app", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os.execv(sys.executable, cmd)  # the server replaces this process: signals and exit code are its own
    return 0  # not reached


# --- exposure ------------------------------------------------------------------------------------------


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for the wildcard ('', 0.0.0.0, ::) and anything else."""
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:  # a host name other than localhost: may resolve to anything
        return False


def addresses_from_argv(argv: list[str]) -> list[str] | None:
    """The addresses a `panel serve`/`bokeh serve` command line binds: ``--address`` or, without one, every
    interface ("0.0.0.0", Bokeh's default); [] for a Unix socket; None when argv is not such a command."""
    if "serve" not in argv:
        return None
    address = None
    for i, arg in enumerate(argv):
        if arg == "--unix-socket" or arg.startswith("--unix-socket="):
            return []
        if arg == "--address" and i + 1 < len(argv):
            address = argv[i + 1]
        elif arg.startswith("--address="):
            address = arg.split("=", 1)[1]
    return [address] if address else ["0.0.0.0"]


def listening_addresses(pid: int | str = "self") -> list[str] | None:
    """The addresses a process (this one by default) listens on over TCP, from Linux's /proc: its socket
    inodes (/proc/PID/fd) matched against the listening sockets of /proc/PID/net/tcp and tcp6. None where
    there is no /proc (macOS, Windows) or it cannot be read."""
    folder = Path("/proc") / str(pid)
    try:
        inodes = set()
        for fd in (folder / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        addresses = set()
        for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
            path = folder / "net" / table
            if not path.exists():  # no IPv6 in this kernel
                continue
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    addresses.add(_proc_address(fields[1].split(":")[0], family))
        return sorted(addresses)
    except (OSError, ValueError):
        return None


def _proc_address(hex_address: str, family: int) -> str:
    """/proc/net/tcp* writes an address as 32-bit words in host (little-endian) order, in hex."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    return socket.inet_ntop(family, words)


def exposure_warning(addresses: list[str], authenticated: bool, port: int | None = None,
                     origins: list[str] | None = None) -> str | None:
    """The warning for a server listening on `addresses`, or None when it is safe enough."""
    exposed = [a for a in addresses if not is_loopback(a)]
    if not exposed or authenticated:
        return None
    where = ", ".join("all interfaces" if a in ("", "0.0.0.0", "::") else a for a in exposed)
    if port is not None:
        where += f", port {port}"
    message = (f"Structures Explorer is served on a network address ({where}) without authentication: anyone "
               "who can reach it can use the app, start training jobs and write to the run store (the websocket "
               "origin check stops browsers, not scripts). Serve on 127.0.0.1 (`explorer serve` does by "
               "default) behind a reverse proxy, or add --basic-auth PASSWORD --cookie-secret SECRET, or "
               "--oauth-provider; see README, 'Serving safely'.")
    if origins is not None and not origins:
        message += " Browsers on other machines also need --allow-websocket-origin HOST:PORT."
    return message


def warn_if_exposed(authenticated: bool) -> str | None:
    """Log (once per process) a warning when this server listens on a non-loopback address without
    authentication; returns the warning, or None."""
    global _warned
    if _warned:
        return None
    _warned = True
    addresses = listening_addresses()
    if addresses is None:
        addresses = addresses_from_argv(sys.argv) or []
    message = exposure_warning(addresses, authenticated)
    if message:
        log.warning(message)
    return message


def _host_for_url(address: str) -> str:
    if address in ("", "0.0.0.0", "::"):
        return "localhost"
    return f"[{address}]" if ":" in address else address
