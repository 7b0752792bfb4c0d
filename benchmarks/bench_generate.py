#!/usr/bin/env python3
"""One `generate` through pcscd + vpcd against the in-process path, in the same run.

Prints, for the applet backend (APDUs) and the FIDO2 backend (CTAP messages:
CTAPHID in process, NFCCTAP over pcscd + vpcd): messages exchanged per generate,
wall time per generate on each path and their ratio; and `sealcodes --help`
start-up time. Needs pcscd with vsmartcard-vpcd
(scripts/start-pcscd.sh) and the package installed.

    python benchmarks/bench_generate.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sealboard.emulator import EmulatedToken
from sealcodes import derivation
from sealcodes.backends.applet import AppletBackend
from sealcodes.backends.base import Interaction
from sealcodes.pcsc import PcscConnection

READER = "Virtual PCD 00 00"
PIN = "bench-pin"
LABEL = "bench.example/user"


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return PIN


def _generate(connection):
    """What `sealcodes generate` does with the device: select, verify, derive; then derive codes."""
    backend = AppletBackend(connection)
    response = backend.respond(derivation.challenge(LABEL, 0), {"slot": 1}, _Pin())
    return derivation.derive(response, LABEL, 0)


def _enroll(connection):
    AppletBackend(connection).enroll(_Pin(), slot=1)


class _CountingCtap:
    """Wraps a python-fido2 CtapDevice and counts the CTAP messages sent."""

    def __init__(self, device):
        self._device = device
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._device, name)

    def call(self, *args, **kwargs):
        self.calls += 1
        return self._device.call(*args, **kwargs)


def _fido_generate(device, enrollment):
    from sealcodes.backends.fido2 import Fido2Backend

    counting = _CountingCtap(device)
    t0 = time.perf_counter()
    response = Fido2Backend(counting).respond(derivation.challenge(LABEL, 0), enrollment, _Pin())
    codes = derivation.derive(response, LABEL, 0)
    return time.perf_counter() - t0, counting.calls, codes


def bench_fido2(bindir, rounds):
    from fido2.pcsc import CtapPcscDevice
    from sealboard.ctaphid_link import open_emulated_hid_device
    from sealcodes.backends.fido2 import Fido2Backend

    state = tempfile.mkdtemp(prefix="sealcodes-bench-fido-")
    with EmulatedToken(state) as token:
        device = open_emulated_hid_device(token.token)
        enrollment = Fido2Backend(device).enroll(_Pin(), uv="discouraged")
        local = [_fido_generate(device, enrollment) for _ in range(rounds)]
        device.close()
    server = subprocess.Popen([str(bindir / "sealtoken"), "serve", "--vpcd", "--state", state],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_card(True)
        remote = []
        for _ in range(rounds):
            conn = PcscConnection(READER)
            remote.append(_fido_generate(CtapPcscDevice(conn.pyscard_connection, READER), enrollment))
            conn.close()
    finally:
        server.terminate()
        server.wait()
    assert list(local[-1][2].codes) == list(remote[-1][2].codes), "FIDO2 paths disagree"
    local_ms = statistics.median(t for t, _, _ in local) * 1000
    remote_ms = statistics.median(t for t, _, _ in remote) * 1000
    print(f"FIDO2 CTAP messages/generate:  in-process CTAPHID {local[-1][1]}, pcscd+vpcd NFCCTAP {remote[-1][1]}")
    print(f"FIDO2 generate, in-process:    {local_ms:8.2f} ms (median)")
    print(f"FIDO2 generate, pcscd+vpcd:    {remote_ms:8.2f} ms (median)")
    print(f"FIDO2 ratio vpcd / in-process: {remote_ms / local_ms:8.1f}x")


def _wait_card(present, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            PcscConnection(READER).close()
            if present:
                return
        except Exception:
            if not present:
                return
        time.sleep(0.05)
    raise SystemExit(f"bench: card {'did not appear' if present else 'did not go away'} in {READER}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    state = tempfile.mkdtemp(prefix="sealcodes-bench-")

    # in-process path (same firmware, same flash state)
    with EmulatedToken(state) as token:
        with token.connect() as conn:
            _enroll(conn)
        local_times, local_apdus = [], 0
        for _ in range(args.rounds):
            with token.connect() as conn:
                t0 = time.perf_counter()
                local_codes = _generate(conn)
                local_times.append(time.perf_counter() - t0)
                local_apdus = conn.apdu_count

    # pcscd + vpcd path: the same flash served by `sealtoken serve`
    server = subprocess.Popen([str(bindir / "sealtoken"), "serve", "--vpcd", "--state", state],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_card(True)
        pcsc_times, pcsc_apdus = [], 0
        for _ in range(args.rounds):
            conn = PcscConnection(READER)
            t0 = time.perf_counter()
            pcsc_codes = _generate(conn)
            pcsc_times.append(time.perf_counter() - t0)
            pcsc_apdus = conn.apdu_count
            conn.close()
    finally:
        server.terminate()
        server.wait()
    assert list(pcsc_codes.codes) == list(local_codes.codes), "paths disagree"

    bench_fido2(bindir, args.rounds)

    help_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([str(bindir / "sealcodes"), "--help"], stdout=subprocess.DEVNULL, check=True)
        help_times.append(time.perf_counter() - t0)

    local_ms = statistics.median(local_times) * 1000
    pcsc_ms = statistics.median(pcsc_times) * 1000
    print(f"rounds per path:               {args.rounds}")
    print(f"applet APDUs per generate:     in-process {local_apdus}, pcscd+vpcd {pcsc_apdus}")
    print(f"applet generate, in-process:   {local_ms:8.2f} ms (median)")
    print(f"applet generate, pcscd+vpcd:   {pcsc_ms:8.2f} ms (median)")
    print(f"applet ratio vpcd / in-process:{pcsc_ms / local_ms:8.1f}x")
    print(f"sealcodes --help start-up:     {statistics.median(help_times) * 1000:8.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
