"""deploy/nginx/safegrid.conf and deploy/compose/nginx.conf pass `nginx -t`; the first also
runs for real in front of gunicorn.

Each is included in a throwaway main configuration with a self-signed certificate made
here, its paths moved into the test's directory; the upstream host of the compose file
(`api`) is replaced by loopback, as nginx resolves it while checking. Then the parts
SafeGrid relies on are read from the file itself.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [ROOT / "deploy" / "nginx" / "safegrid.conf", ROOT / "deploy" / "compose" / "nginx.conf"]


def nginx() -> str:
    program = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    assert program, "nginx is not installed: run deploy/bootstrap.sh --dev"
    return program


def self_signed(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "safegrid.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def write_main(site: str, tmp_path: Path) -> Path:
    """A main configuration including `site`, its paths moved into tmp_path."""
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    self_signed(certs)
    site = (site.replace("/etc/ssl/safegrid/", f"{certs}/")
            .replace("/var/log/nginx/", f"{tmp_path}/")
            .replace("server api:8000;", "server 127.0.0.1:8000;"))
    (tmp_path / "site.conf").write_text(site)
    temp = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n{temp}    access_log {tmp_path}/access.log;\n"
        f"    include {tmp_path}/site.conf;\n}}\n")
    return tmp_path / "nginx.conf"


def nginx_t(site: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a main configuration that includes `site` with paths moved to tmp."""
    conf = write_main(site, tmp_path)
    # -e: the log nginx opens before it reads the configuration, also in tmp_path.
    return subprocess.run([nginx(), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                           "-c", str(conf)],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_nginx_accepts_the_configuration(path, tmp_path):
    done = nginx_t(path.read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


def test_nginx_t_refuses_a_broken_configuration(tmp_path):
    broken = CONFIGS[0].read_text().replace("proxy_request_buffering on;",
                                           "proxy_request_buffering sometimes;")
    done = nginx_t(broken, tmp_path)
    assert done.returncode != 0
    assert "proxy_request_buffering" in done.stderr


def test_nginx_t_refuses_a_missing_certificate(tmp_path):
    broken = CONFIGS[0].read_text().replace("fullchain.pem", "missing.pem")
    done = nginx_t(broken, tmp_path)
    assert done.returncode != 0
    assert "missing.pem" in done.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_tls_body_limit_and_buffering_are_what_safegrid_expects(path):
    conf = path.read_text()
    assert re.search(r"listen 443 ssl", conf)
    assert re.search(r"ssl_protocols\s+TLSv1\.2 TLSv1\.3;", conf)
    assert "return 301 https://" in conf  # plain HTTP only redirects
    size = re.search(r"client_max_body_size (\d+)k;", conf)
    assert size, "no client_max_body_size"
    assert int(size.group(1)) * 1024 == Settings().max_body_bytes
    assert "proxy_request_buffering on;" in conf
    sms = re.search(r"location /sms/ \{(.*?)\}", conf, re.S)
    assert sms, "Kannel's webhooks are not fenced off"
    assert "deny all;" in sms.group(1)
    # The client's address for SAFEGRID_PROXY_HOPS=1, and no URI in the access log.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    log_format = re.search(r"log_format safegrid (.*?);", conf, re.S)
    assert log_format
    assert "$request_uri" not in log_format.group(1)
    assert "$request " not in log_format.group(1)


def test_nginx_serves_safegrid_over_tls_as_configured(settings, county, tmp_path):
    """The shipped configuration run for real in front of gunicorn: HTTPS reaches SafeGrid,
    plain HTTP is redirected, an oversized body is refused by nginx, and the client's
    address reaches SafeGrid's rate limits through X-Forwarded-For (SAFEGRID_PROXY_HOPS=1)."""
    import requests

    from deploy.processes import Stack, app_env, free_port

    stack = Stack(tmp_path / "logs")
    try:
        web = stack.gunicorn(app_env(settings.mongodb_uri, settings.redis_url,
                                     settings.data_keys, SAFEGRID_PROXY_HOPS="1"), workers=1)
        https, http = free_port(), free_port()
        site = (CONFIGS[0].read_text()
                .replace("listen 443 ssl", f"listen 127.0.0.1:{https} ssl")
                .replace("listen 80;", f"listen 127.0.0.1:{http};")
                .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{web.port};"))
        conf = write_main(site, tmp_path)
        conf.write_text("user root;\n" + conf.read_text())  # the test's files are root's
        stack._spawn("nginx", [nginx(), "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                               "-c", str(conf),
                               "-g", "daemon off;"], port=https)
        base = f"https://127.0.0.1:{https}"
        cert = str(tmp_path / "certs" / "fullchain.pem")
        ready = requests.get(f"{base}/readyz", verify=cert, timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["warnings"] == []  # X-Forwarded-For trusted: one hop
        moved = requests.get(f"http://127.0.0.1:{http}/readyz", allow_redirects=False,
                             timeout=10)
        assert moved.status_code == 301
        assert moved.headers["Location"].startswith("https://")
        big = requests.post(f"{base}/api/v1/reports", data=b"x" * (70 * 1024), verify=cert,
                            headers={"Content-Type": "application/json"}, timeout=10)
        assert big.status_code == 413
        assert "nginx" in big.text  # refused by nginx, before SafeGrid read it
        # The SMS webhook passes nginx from the allowed address (loopback here): the
        # answer is SafeGrid's own (JSON: no secret given), not nginx's refusal page.
        sms = requests.get(f"{base}/sms/inbound/kannel", verify=cert, timeout=10)
        assert sms.headers["Content-Type"].startswith("application/json"), sms.text
        assert "nginx" not in sms.text
    finally:
        stack.stop()
