"""`sealtoken`: run the sealtoken firmware on this PC.

    sealtoken serve --vpcd [HOST:PORT] --state DIR [--presence approve|deny|wait|timeout]
    sealtoken bridge --usb SOCKET [--vpcd HOST:PORT]

`serve` serves the token as a virtual smartcard behind pcscd (vsmartcard's vpcd driver), its flash
kept in DIR across restarts. `bridge` puts the CCID interface of a board whose USB bus is the
socket SOCKET (the board package under MicroPython's unix port, sealboard.usblink) behind pcscd the
same way: vpcd's power controls and APDUs become CCID messages to the board.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .platform import PRESENCE_POLICIES, CPythonPlatform
from .vpcd import DEFAULT_HOST, DEFAULT_PORT, VpcdCard, parse_address


def _set_presence(platform, policy):
    if platform.presence == "wait" and policy == "approve":
        platform.press()
        return
    platform.presence = policy


def _serve(args):
    from sealtoken.token import Token

    try:
        host, port = parse_address(args.vpcd)
    except ValueError as exc:
        raise SystemExit(f"sealtoken: {exc}") from None
    platform = CPythonPlatform(state_dir=args.state, presence=args.presence)
    token = Token(platform)
    server = VpcdCard(token.card, host, port)

    def _stop(signum, frame):
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # the emulated touch sensor, changed from outside: SIGUSR1 approves touches from now on
    # (and presses once for --presence wait), SIGUSR2 refuses them
    signal.signal(signal.SIGUSR1, lambda *_: _set_presence(platform, "approve"))
    signal.signal(signal.SIGUSR2, lambda *_: _set_presence(platform, "deny"))
    try:
        server.connect(timeout=args.connect_timeout)
    except ConnectionError as exc:
        raise SystemExit(f"sealtoken: {exc}") from None
    print(f"sealtoken: serving as a virtual card on vpcd {host}:{port}, state in {args.state}", flush=True)
    try:
        server.serve_forever(reconnect=True)
    finally:
        platform.close()
    return 0


def _bridge(args):
    from .ccid import CcidCard, CcidReader
    from .usblink import CLASS_CCID, UsbError, UsbLink

    try:
        host, port = parse_address(args.vpcd)
    except ValueError as exc:
        raise SystemExit(f"sealtoken: {exc}") from None
    try:
        link = UsbLink(args.usb, timeout=args.connect_timeout)
        device = link.enumerate()
        reader = CcidReader(link, device.interface(CLASS_CCID))
    except (UsbError, OSError) as exc:
        raise SystemExit(f"sealtoken: {exc}") from None
    server = VpcdCard(CcidCard(reader), host, port)

    def _stop(signum, frame):
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.connect(timeout=args.connect_timeout)
    except ConnectionError as exc:
        link.close()
        raise SystemExit(f"sealtoken: {exc}") from None
    print(f"sealtoken: the CCID interface of {device.product} (serial {device.serial}) is a card on vpcd "
          f"{host}:{port}", flush=True)
    try:
        server.serve_forever(reconnect=True)
    except UsbError as exc:
        raise SystemExit(f"sealtoken: {exc}") from None
    finally:
        link.close()
    return 0


def _seconds(text):
    """A number of seconds in ASCII digits and one '.': float() also takes 'nan', which no
    deadline check ever reaches, and '١'."""
    whole, _, fraction = text.partition(".")
    digits = all(not part or (part.isascii() and part.isdigit()) for part in (whole, fraction))
    if not (whole or fraction) or not digits or len(text) > 12:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return float(text)


def build_parser():
    parser = argparse.ArgumentParser(prog="sealtoken", description="Run the sealtoken firmware on this PC.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log bridge events to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the token as a virtual smartcard through pcscd + vpcd")
    serve.add_argument(
        "--vpcd", nargs="?", const=f"{DEFAULT_HOST}:{DEFAULT_PORT}", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        metavar="HOST:PORT", help=f"vpcd address (default {DEFAULT_HOST}:{DEFAULT_PORT}: reader 'Virtual PCD 00 00')",
    )
    serve.add_argument("--state", required=True, metavar="DIR", help="directory holding the token's flash")
    serve.add_argument("--presence", choices=PRESENCE_POLICIES, default="approve",
                       help="how the emulated touch sensor answers (default: approve); "
                            "SIGUSR1 switches to approve (or presses, with 'wait'), SIGUSR2 to deny")
    serve.add_argument("--connect-timeout", type=_seconds, default=10.0, help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    bridge = sub.add_parser("bridge", help="put a board's CCID interface (USB over a socket) behind pcscd + vpcd")
    bridge.add_argument("--usb", required=True, metavar="SOCKET", help="the Unix socket that is the board's USB bus")
    bridge.add_argument(
        "--vpcd", nargs="?", const=f"{DEFAULT_HOST}:{DEFAULT_PORT}", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        metavar="HOST:PORT", help=f"vpcd address (default {DEFAULT_HOST}:{DEFAULT_PORT})",
    )
    bridge.add_argument("--connect-timeout", type=_seconds, default=30.0, help=argparse.SUPPRESS)
    bridge.set_defaults(func=_bridge)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="sealtoken: %(message)s")
    os.umask(0o077)
    try:  # the token's secrets are in this process's memory: no core dumps (docs/security.md item 8)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    sys.exit(args.func(args))
