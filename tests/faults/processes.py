"""Real processes for the fault tests: a private ``redis-server`` that can be killed, restarted and frozen, a gunicorn
serving the site, and a browser-like HTTP client. Never the shared Redis other tests use."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from celery import current_app
from django.conf import settings

from tests.services import ROOT, test_database_url, wait_for

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server on PATH to run a private Redis"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A throwaway ``redis-server`` on a free port, without persistence: a restart loses everything, like a Redis
    that crashed or was replaced. ``freeze`` stops the process (SIGSTOP) with its port open: connections are
    accepted by the kernel and never answered, like a Redis stuck in a long command or a dead network path."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": str(self.directory),
        }
        self.process = subprocess.Popen(
            ["redis-server", *(part for name, value in options.items() for part in (f"--{name}", value))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, what="the private redis-server to start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()  # SIGKILL ends a frozen process too
            self.process.wait()
            self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def consumers(self) -> int:
        """Clients blocked reading a queue: a connected worker."""
        return sum(1 for c in self.client().client_list() if c.get("cmd") in ("brpop", "blpop", "bzpopmin"))


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def publish(url: str, task: Any, *args: Any, **options: Any) -> None:
    """Queue ``task`` on the broker at ``url`` (this process's Celery app stays on the shared Redis)."""
    with current_app.connection_for_write(url) as broker:
        task.apply_async(args, connection=broker, **options)


# --- A web server -------------------------------------------------------------------------------------------------
def server_environment(**overrides: str) -> dict[str, str]:
    """What a gunicorn or Celery process of the tests runs with: the production settings on the test database, the
    test run's queue, plain HTTP, fast password hashing (``tests/faults/web_settings.py``)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.web_settings",
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL or "",
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "DATABASE_CONN_MAX_AGE": "0",
        "SECURE_SSL_REDIRECT": "0",
        "QUALITY_RECOMPUTE_ON_COMMIT": "1",
        **overrides,
    }


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, log: Path) -> Iterator[str]:
    """gunicorn serving ``config.wsgi`` (one process, four threads) on a free port; yields its base URL."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--workers=1",
                "--threads=4",
                f"--bind=127.0.0.1:{port}",
                "--timeout=120",
                "--log-level=warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:

            def answers() -> bool:
                assert server.poll() is None, f"gunicorn exited:\n{log.read_text()[-3000:]}"
                with contextlib.suppress(OSError):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    connection.request("GET", "/healthz")
                    return connection.getresponse().status in (200, 503)
                return False

            wait_for(answers, timeout=60, what="gunicorn to answer")
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Browser:
    """One person's cookies and the answers they got, each timed. Cookies are kept by hand: the production settings
    set them ``Secure`` and this is plain HTTP on loopback, where ``http.cookiejar`` would withhold them."""

    base: str
    timeout: float = 30.0
    cookies: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, Answer]] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        fetch: bool = False,
    ) -> Answer:
        host, port = self.base.removeprefix("http://").split(":")
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        if form is not None:
            sent["Origin"] = self.base  # browsers send it with every POST; Django's CSRF check compares it
            if fetch:  # the page script: FormData (multipart) and its marker header
                boundary = "----outage" + secrets.token_hex(8)
                parts = [
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    for k, v in form.items()
                ]
                body = ("".join(parts) + f"--{boundary}--\r\n").encode()
                sent["Content-Type"] = f"multipart/form-data; boundary={boundary}"
                sent["X-Requested-With"] = "fetch"
            else:
                body = urlencode(form).encode()
                sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        started = time.monotonic()
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        answer = Answer(response.status, dict(response.getheaders()), text, time.monotonic() - started)
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        self.answers.append((f"{method} {path}", answer))
        return answer
