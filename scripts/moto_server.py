"""Serves moto's AWS emulator one request at a time, for scripts/moto.sh.

moto's own moto_server serves requests on many threads at once and moto's
backends are not thread-safe: concurrent conflicting writes were lost and
idempotency keys used twice. Here every request is applied under one lock,
so each is atomic, as a real table applies it; clients still send
concurrently (measured in the project's emulator notes, "Not thread-safe").

One request is not one step: an SQS long poll (ReceiveMessage with
WaitTimeSeconds) would hold the lock while it waits for a message that no
other request could then send. It is run as short polls, each under the
lock, every 50 ms until a message comes or the wait is over.

    python moto_server.py -H 127.0.0.1 -p PORT
"""
import argparse
import io
import json
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def call(environ, body):
        """Runs one request under the lock; returns status, headers, body."""
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_LENGTH"] = str(len(body))
        got = {}

        def start_response(status, headers, exc_info=None):
            got["status"], got["headers"] = status, headers
            return lambda data: None

        with lock:
            out = b"".join(app(env, start_response))
        return got["status"], got["headers"], out

    def wrapped(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        wait = 0
        if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".ReceiveMessage"):
            try:
                req = json.loads(body or b"{}")
                wait = float(req.get("WaitTimeSeconds") or 0)
                if wait:
                    req["WaitTimeSeconds"] = 0
                    body = json.dumps(req).encode()
            except ValueError:
                pass
        # A long poll is short polls until a message comes or the wait ends,
        # the lock released in between so that other requests (the send it
        # waits for) run.
        deadline = time.monotonic() + wait
        while True:
            status, headers, out = call(environ, body)
            if not wait or time.monotonic() >= deadline or not status.startswith("200"):
                break
            try:
                if json.loads(out or b"{}").get("Messages"):
                    break
            except ValueError:
                break
            time.sleep(0.05)
        start_response(status, headers)
        return [out]

    return wrapped


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, required=True)
    a = p.parse_args()
    app = serialized(DomainDispatcherApplication(create_backend_app))
    run_simple(a.host, a.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
