"""Serves moto's AWS emulator on one thread, for scripts/moto.sh.

moto's own moto_server serves requests on many threads at once and moto's
backends are not thread-safe: concurrent conflicting writes were lost and
idempotency keys used twice. Served one request at a time, each request is
applied atomically, as a real table applies it; clients still send
concurrently (measured in ../shared/docs/aws-emulator.md, "Not thread-safe").

    python moto_server.py -H 127.0.0.1 -p PORT
"""
import argparse

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, required=True)
    a = p.parse_args()
    run_simple(a.host, a.port, DomainDispatcherApplication(create_backend_app),
               threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
