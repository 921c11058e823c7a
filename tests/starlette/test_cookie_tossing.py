"""Login CSRF by cookie tossing, in real Chromium over https.

An attacker starts a sign-in at ``app.test`` in their own browser and stops before the
callback. Their sibling subdomain ``evil.app.test`` then sets their flow cookie for the
whole domain (``Domain=app.test``) in the victim's browser and sends the victim to their
callback URL. With ``__Secure-`` flow cookies the app finds a valid flow and signs the
victim in as the attacker; with ``__Host-`` ones Chromium refuses to store the planted
cookie, so the callback finds no flow started in this browser.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import whop_oauth

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium"),
]

HOSTS = ("app.test", "evil.app.test", "whop.test")


def make_certificate(directory: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for the three hosts: (cert, key, base64 SHA-256 of its SPKI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.test")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName(host) for host in HOSTS]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [*alt_names, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode()


def wait_until_serving(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            # Only "is anything listening yet?": the browser checks the certificate.
            httpx.get(f"https://127.0.0.1:{port}/", verify=False)  # noqa: S501
        except httpx.TransportError:
            time.sleep(0.05)  # polling for readiness, not papering over a race
        else:
            return
    raise TimeoutError(f"nothing answered on port {port} within {timeout}s")


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    """``tls_sites.py`` served by uvicorn over TLS on loopback: (port, certificate, SPKI hash)."""
    cert, key, spki = make_certificate(tmp_path)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The whop_oauth this test imported (the working tree, or an old one on PYTHONPATH).
    source = Path(whop_oauth.__file__).resolve().parents[1]
    env = {
        **os.environ,
        "SITES_PORT": str(port),
        "PYTHONPATH": os.pathsep.join([str(source), str(Path(__file__).parent)]),
    }
    command = [
        sys.executable, "-m", "uvicorn", "tls_sites:app", "--fd", str(sock.fileno()),
        "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
        "--log-level", "warning", "--no-access-log",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, pass_fds=[sock.fileno()])
    sock.close()
    try:
        wait_until_serving(port, process)
        yield port, cert, spki
    finally:
        process.terminate()
        process.wait(timeout=10)


async def attacker_sign_in_stopped_before_callback(app: str, cert: Path) -> tuple[str, str, str]:
    """The attacker's own sign-in, up to the callback: (flow cookie name, value, callback URL).

    Their own tooling, not a browser: it connects to loopback, names the host by SNI and
    ``Host``, and does not follow redirects, so the code stays unused.
    """
    tls = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(verify=tls) as http:

        async def get(url: str) -> httpx.Response:
            target = httpx.URL(url)
            return await http.get(
                target.copy_with(host="127.0.0.1"),
                headers={"Host": f"{target.host}:{target.port}"},
                extensions={"sni_hostname": target.host},
            )

        login = await get(f"{app}/auth/login")
        name, value = login.headers["set-cookie"].split(";", 1)[0].split("=", 1)
        authorize = await get(login.headers["location"])
        assert authorize.headers["location"].startswith(f"{app}/auth/callback?code=")
        return name, value, authorize.headers["location"]


async def test_a_sibling_subdomain_cannot_sign_the_victim_in_as_the_attacker(
    sites: tuple[int, Path, str],
) -> None:
    from playwright.async_api import async_playwright

    port, cert, spki = sites
    app, evil = f"https://app.test:{port}", f"https://evil.app.test:{port}"
    flow_name, flow_value, callback = await attacker_sign_in_stopped_before_callback(app, cert)
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=" + ", ".join(f"MAP {host} 127.0.0.1" for host in HOSTS),
        f"--ignore-certificate-errors-spki-list={spki}",  # trust exactly this certificate
    ]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            # The victim follows a link to the attacker's subdomain.
            victim = await browser.new_context()
            page = await victim.new_page()
            page.set_default_timeout(15_000)
            query = urlencode({"name": flow_name, "value": flow_value, "next": callback})
            landed = await page.goto(f"{evil}/plant?{query}")
            assert landed is not None
            home = await page.goto(f"{app}/")
            assert home is not None
            who = await home.json()
            planted = {c["name"]: c["domain"] for c in await victim.cookies(app)}
        finally:
            await browser.close()

    assert who == {"signed_in": False, "id": None}
    assert landed.status == 400  # the callback found no flow started in this browser
    assert flow_name.startswith("__Host-whop_flow_")
    # Chromium refused every planted __Host- cookie (the nameless one posing as one too)...
    assert not [name for name in planted if "__Host-" in name or not name]
    # ...while planting itself works here: the other names are in the victim's jar, unread.
    suffix = flow_name.split("whop_flow_", 1)[1]
    for name in (f"__Secure-whop_flow_{suffix}", f"whop_flow_{suffix}"):
        assert planted[name] == ".app.test"
