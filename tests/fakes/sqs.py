"""A loopback Amazon SQS for the broker tests: moto's standalone server, which speaks SQS's real
wire protocol (JSON and query), in a thread of the test process on 127.0.0.1 and a free port.

Nothing in Huntaze knows it is there. Clients reach it the way an operator points them at
localstack: through the AWS SDK's own variables (``environment()``: ``AWS_ENDPOINT_URL_SQS`` and
throw-away credentials), so kombu's SQS transport, boto3 and the worker's pycurl polling talk to
it as they would to AWS, and nothing leaves the loopback interface.

Every queue lives until the test run ends: tests keep apart by queue-name prefixes of their own.
It fakes no other AWS service.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class FakeSQS:
    """``start()``, then ``environment()`` for any process that should use it."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> FakeSQS:
        # werkzeug logs every request at INFO: the workers' polling would bury a failure's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def environment(self) -> dict[str, str]:
        """The AWS SDK's variables that send SQS calls here, with credentials it accepts; the
        instance-metadata lookup is switched off so nothing falls back to a real address."""
        return {"AWS_ENDPOINT_URL_SQS": self.endpoint, **CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self) -> Any:
        return boto3.client(
            "sqs",
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def create_queue(self, name: str, *, visibility_timeout: int) -> None:
        """A queue made beforehand, as Terraform or the console would make it."""
        self.client().create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility_timeout)})

    def queue_names(self, prefix: str) -> list[str]:
        urls = self.client().list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        return sorted(url.rsplit("/", 1)[-1] for url in urls)

    def attributes(self, name: str) -> dict[str, str]:
        """A queue's attributes as SQS reports them (counts are strings: "0", "1", …)."""
        client = self.client()
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        return client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
