"""A loopback Amazon CloudWatch for the metrics sink tests: moto's standalone server, which speaks
CloudWatch's real wire protocols (botocore sends JSON, gzipped above 10 kB), in a thread of the test
process on 127.0.0.1 and a free port.

Around moto it keeps a log of every PutMetricData call as it arrived on the wire (body size and
number of datums), so tests can check the API's limits (1,000 datums and 1 MB a call), and it can
answer the next calls with CloudWatch's throttling error, as AWS does under load.

moto keeps its data for the whole test run: tests keep apart by an Environment dimension of their own.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import boto3
import cbor2
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class Call:
    namespace: str
    datums: int
    body_bytes: int  # on the wire (botocore gzips bodies over 10 kB)
    decoded_bytes: int  # the request itself
    throttled: bool


def _put_metric_data(environ: dict[str, Any], body: bytes) -> dict[str, Any] | None:
    """The PutMetricData request in a body of any of CloudWatch's protocols, else None."""
    path, content_type = environ.get("PATH_INFO", ""), environ.get("CONTENT_TYPE", "")
    if "cbor" in content_type:
        return cbor2.loads(body) if path.endswith("/PutMetricData") else None
    if "json" in content_type:
        return json.loads(body) if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".PutMetricData") else None
    form = parse_qs(body.decode())
    if form.get("Action") != ["PutMetricData"]:
        return None
    members = {key.split(".")[2] for key in form if key.startswith("MetricData.member.")}
    return {"Namespace": form["Namespace"][0], "MetricData": list(members)}


def _throttling(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """CloudWatch's answer beyond its request rate, in the protocol the request used."""
    error = {"__type": "Throttling", "message": "Rate exceeded"}
    headers = [("x-amzn-query-error", "Throttling;Sender")]
    if "cbor" in environ.get("CONTENT_TYPE", ""):
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        body = cbor2.dumps(error)
    else:
        headers += [("Content-Type", "application/x-amz-json-1.0")]
        body = json.dumps(error).encode()
    start_response("400 Bad Request", headers)
    return [body]


class FakeCloudWatch(ThreadedMotoServer):
    """``start()``, then ``environment()`` or ``client()``; ``calls`` lists PutMetricData calls."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""
        self.calls: list[Call] = []
        self._pass = self._throttle = 0
        self._lock = threading.Lock()

    def start(self) -> FakeCloudWatch:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        super().start()
        host, port = self.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self._recording(DomainDispatcherApplication(create_backend_app)), True,
            request_handler=MotoRequestHandler,
        )  # fmt: skip
        self._server_ready_event.set()
        self._server.serve_forever()

    def throttle_next(self, calls: int, *, after: int = 0) -> None:
        """Answer ``calls`` PutMetricData calls, once ``after`` more have passed, with 400 Throttling
        ("Rate exceeded"), as CloudWatch does beyond its request rate."""
        with self._lock:
            self._pass, self._throttle = after, calls

    def _recording(self, app: Any) -> Any:
        def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            decoded = gzip.decompress(body) if environ.get("HTTP_CONTENT_ENCODING") == "gzip" else body
            request = _put_metric_data(environ, decoded)
            if request is not None:
                with self._lock:
                    if self._pass:
                        self._pass -= 1
                        throttled = False
                    else:
                        throttled = self._throttle > 0
                        self._throttle -= throttled
                    datums = len(request["MetricData"])
                    self.calls.append(Call(request["Namespace"], datums, len(body), len(decoded), throttled))
                if throttled:
                    return _throttling(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            return app(environ, start_response)

        return wrapped

    def environment(self) -> dict[str, str]:
        """Throw-away credentials, and no instance-metadata lookup that could leave the loopback."""
        return {**CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self) -> Any:
        return boto3.client(
            "cloudwatch",
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
