"""`sealcodes verifier pam --url` sends the API key and the code only where it should
(docs/security.md item 36): https, or http to a loopback address and a privileged port; never
after a redirect, never to a proxy from the environment; with --cafile, only to a server whose
certificate chains to that CA; and the whole exchange has one deadline. The TLS server is a real
`verifier serve --certfile` (uvicorn); its certificates are made here with `cryptography`.

The second review: any local user could listen on the loopback port of a stopped verifier
(`http://127.0.0.1:18700`) and answer "accepted" for root; and a server dripping one byte per
read held the login for as long as it liked (the timeout was per read)."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import ssl
import subprocess
import threading
import time

import pytest

from _support import console_script
from _vsupport import VerifierServer, cheap_policy, code_set, free_privileged_port, record_for
from sealcodes.verifier import Verifier, open_store, pam

#: a user of every Debian system: PAM_USER must be one (docs/verifier.md, "PAM")
USER = "daemon"


@pytest.mark.parametrize("url, allowed", [
    ("https://verifier.example.org", True),
    ("https://10.0.0.5:8700", True),
    ("https://127.0.0.1:8700", True),      # any port: the certificate is checked
    ("http://127.0.0.1:870", True),        # a port only root may listen on
    ("http://127.3.4.5", True),            # port 80
    ("http://[::1]:1023", True),
    ("http://localhost:443", True),
    ("http://127.0.0.1:8700", False),      # any local user may listen there
    ("http://[::1]:1024", False),
    ("http://localhost:18700", False),
    ("http://127.0.0.1:99999", False),
    ("http://10.0.0.5:80", False),
    ("http://verifier.example.org", False),
    ("http://127.0.0.1.evil.example", False),
    ("HTTP://10.0.0.5", False),
    ("https://", False),
    ("file:///etc/passwd", False),
    ("ftp://127.0.0.1", False),
    # ports that urllib refuses and http.client would read as 443
    ("https://verifier.example.org:\u0664\u0664\u0663", False),
    ("https://verifier.example.org:4_43", False),
    ("https://verifier.example.org: 443", False),
    ("https://verifier.example.org:" + "4" * 5000, False),
    ("http://127.0.0.1:\u0668\u0660", False),
])
def test_url_rules(url, allowed):
    if allowed:
        pam.check_url(url, first_unprivileged_port=1024)
    else:
        with pytest.raises(pam.PamRefusal, match="https://|invalid port"):
            pam.check_url(url, first_unprivileged_port=1024)


def test_the_systems_first_unprivileged_port_counts():
    """Where any user may listen on every port (ip_unprivileged_port_start = 0, as in some
    containers), no plain http is taken; where the system has it at 1024, port 1023 is fine."""
    with pytest.raises(pam.PamRefusal, match="any local user may listen there"):
        pam.check_url("http://127.0.0.1:80", first_unprivileged_port=0)
    with open(pam.UNPRIVILEGED_PORT_START_FILE) as handle:
        first = int(handle.read())
    assert pam.unprivileged_port_start() == first
    if first > 1:
        pam.check_url(f"http://127.0.0.1:{first - 1}")
    with pytest.raises(pam.PamRefusal):
        pam.check_url(f"http://127.0.0.1:{first}")


class Recorder(http.server.BaseHTTPRequestHandler):
    """A server that records what reaches it and answers as told by the class attributes."""

    status, headers, body = 200, {}, b'{"result": "accepted"}'
    seen: list

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        self.send_response(self.status)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def _recorder(tls=None, **answer):
    """A recording server on 127.0.0.1 and a free port; with `tls` (the files of `_certificates`)
    it speaks HTTPS with the certificate of 127.0.0.1 signed by ca1."""
    handler = type("Handler", (Recorder,), {"seen": [], "headers_out": answer.pop("headers", {}), **answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls["cert"], tls["key"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.base = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def tls(tmp_path):
    return _certificates(tmp_path)


def test_no_redirect_is_followed(tls):
    """The review: a 302 turned the POST into a GET carrying the key to the new host, whose
    "accepted" was believed."""
    elsewhere, taken = _recorder(tls)
    redirecting, asked = _recorder(tls, status=302, body=b"", headers={"Location": elsewhere.base + "/v1/verify"})
    try:
        with pytest.raises(pam.PamRefusal, match="HTTP 302"):
            pam.check_remote(redirecting.base, "sck_key_secret", "root", "CODE", cafile=tls["ca1"])
        assert len(asked.seen) == 1 and taken.seen == []
    finally:
        elsewhere.shutdown()
        redirecting.shutdown()


def test_no_proxy_from_the_environment(monkeypatch, tls):
    verifier, asked = _recorder(tls)
    proxy, proxied = _recorder()
    try:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        assert pam.check_remote(verifier.base, "sck_k", "root", "CODE", cafile=tls["ca1"]) == "accepted"
        assert proxied.seen == [] and len(asked.seen) == 1
    finally:
        verifier.shutdown()
        proxy.shutdown()


def test_a_listener_on_an_unprivileged_loopback_port_is_never_asked(tmp_path):
    """The review's squat: while the verifier is down, any local user listens on its loopback port
    and answers "accepted"; the helper let root in."""
    squatter, asked = _recorder()  # answers {"result": "accepted"} to anything
    key_file = tmp_path / "key"
    key_file.write_text("sck_000000000000_x\n")
    try:
        result = subprocess.run([console_script("sealcodes"), "verifier", "pam", "--url", squatter.base,
                                 "--api-key-file", str(key_file)], input="NOT-A-REAL-CODE\0", capture_output=True,
                                text=True, env={**os.environ, "PAM_USER": "root", "PAM_TYPE": "auth"}, timeout=60)
    finally:
        squatter.shutdown()
    assert result.returncode == 1 and asked.seen == []
    assert f"http:// to port {squatter.server_port} is refused: any local user may listen there" in result.stderr


class Dripping(http.server.BaseHTTPRequestHandler):
    """Answers "accepted", one byte every 0.2 s (about 10 s in all)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"result": "accepted"}' + b" " * 30
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_the_whole_exchange_has_one_deadline(tls):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["cert"], tls["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(pam.PamRefusal, match="did not answer within 1 s"):
            pam.check_remote(f"https://127.0.0.1:{server.server_port}", "sck_k", "root", "CODE", timeout=1.0,
                             cafile=tls["ca1"])
    finally:
        server.shutdown()


def _database_with_a_pam_key(tmp_path, count):
    """A database where USER has `count` codes, and a file holding a verify key: (url, store,
    verifier, codes, key file)."""
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=0))
    codes = code_set(count=count)
    verifier.import_record(record_for(codes, account=USER))
    _, key = verifier.create_api_key("pam", "verify")
    key_file = tmp_path / "pam.key"
    key_file.write_text(key + "\n")
    return url, store, verifier, codes, key_file


@pytest.mark.skipif(os.geteuid() != 0, reason="listening on a port below 1024 needs root (as CI runs)")
def test_plain_http_to_a_privileged_loopback_port(tmp_path):
    url, store, verifier, codes, key_file = _database_with_a_pam_key(tmp_path, 2)
    server = VerifierServer(url, port=free_privileged_port()).start()
    try:
        result = subprocess.run([console_script("sealcodes"), "verifier", "pam", "--url", server.base,
                                 "--api-key-file", str(key_file)], input=codes.codes[0] + "\0", capture_output=True,
                                text=True, env={**os.environ, "PAM_USER": USER, "PAM_TYPE": "auth"}, timeout=60)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert verifier.status(USER).remaining == 1
    store.close()


def test_plain_http_beyond_loopback_is_refused_before_connecting(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("sck_000000000000_x\n")
    result = subprocess.run([console_script("sealcodes"), "verifier", "pam", "--url", "http://192.0.2.7:8700",
                             "--api-key-file", str(key_file)], input="CODE\0", capture_output=True, text=True,
                            env={**os.environ, "PAM_USER": "root", "PAM_TYPE": "auth"}, timeout=60)
    assert result.returncode == 1
    assert "refused (the verifier URL must start with https:// (http:// only for a loopback address))" in result.stderr


def _certificates(tmp_path):
    """Two CAs, and a certificate for 127.0.0.1 signed by the first; PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def issue(subject, key, issuer, issuer_key, ca):
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                            critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    files = {}
    keys = {}
    for ca in ("ca1", "ca2"):
        keys[ca] = ec.generate_private_key(ec.SECP256R1())
        certificate = issue(f"test {ca}", keys[ca], f"test {ca}", keys[ca], True)
        files[ca] = tmp_path / f"{ca}.pem"
        files[ca].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    files["cert"] = tmp_path / "server.pem"
    files["cert"].write_bytes(issue("127.0.0.1", server_key, "test ca1", keys["ca1"], False)
                              .public_bytes(serialization.Encoding.PEM))
    files["key"] = tmp_path / "server.key"
    files["key"].write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return {k: str(v) for k, v in files.items()}


def test_https_with_a_pinned_ca(tmp_path):
    files = _certificates(tmp_path)
    url, store, verifier, codes, key_file = _database_with_a_pam_key(tmp_path, 3)
    server = VerifierServer(url, args=("--certfile", files["cert"], "--keyfile", files["key"]), ca=files["ca1"]).start()

    def pam_cli(code, *options):
        return subprocess.run([console_script("sealcodes"), "verifier", "pam", "--url", server.base,
                               "--api-key-file", str(key_file), *options], input=code + "\0", capture_output=True,
                              text=True, env={**os.environ, "PAM_USER": USER, "PAM_TYPE": "auth"},
                              timeout=60)

    try:
        assert server.base.startswith("https://127.0.0.1:")
        accepted = pam_cli(codes.codes[0], "--cafile", files["ca1"])
        assert accepted.returncode == 0, accepted.stderr
        for options in (("--cafile", files["ca2"]), ()):  # another CA; the system's CAs
            refused = pam_cli(codes.codes[1], *options)
            assert refused.returncode == 1 and "unreachable or answered badly" in refused.stderr
        assert pam_cli(codes.codes[1], "--cafile", str(tmp_path / "none.pem")).returncode == 1
    finally:
        log = server.stop()
    assert "Traceback" not in log
    assert verifier.status(USER).remaining == 2  # only the pinned attempt reached the verifier
    assert [a.event for a in verifier.audit(USER)] == ["import", "success"]
    store.close()


def test_the_help_says_the_key_must_be_verify_only():
    """The key file sits on every login host: --help says so where the option is, not only the docs."""
    shown = subprocess.run([console_script("sealcodes"), "verifier", "pam", "--help"], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0
    options = " ".join(shown.stdout.split("Options:", 1)[1].split())
    key_help = options.split("--api-key-file PATH", 1)[1].split("--cafile", 1)[0]
    assert "must be a verify-only key (api-key create NAME --scope verify)" in key_help
    assert "every login host" in key_help and "import, replace or revoke codes" in key_help
