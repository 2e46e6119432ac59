"""A TLS client on the operator's side: what a browser would be served, its chain and name
verified with a given CA file."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from cryptography import x509


def verified_context(ca_file: Path, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """Python's default checks with ``ca_file`` as the only trust; ``version``: that one alone."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def served_certificate(address: str, name: str, ca_file: Path) -> x509.Certificate:
    """The leaf served on ``address``:443 for ``name`` (SNI), once its chain and name are verified."""
    with socket.create_connection((address, 443), timeout=10) as raw:
        with verified_context(ca_file).wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def https_headers(address: str, name: str, ca_file: Path) -> dict[str, str]:
    """The response headers (names lowercased) of ``GET /`` for ``name`` over verified TLS."""
    request = f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((address, 443), timeout=10) as raw:
        with verified_context(ca_file).wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    return {key.lower(): value.strip() for key, value in (line.split(":", 1) for line in head)}
