"""A mail server on a free port of 127.0.0.1 that speaks enough SMTP (RFC 5321) for smtplib and
Django's SMTP email backend: HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It keeps every
message it accepted and can be told how to answer a recipient in turn ("451 …" to ask the sender
to try again later, "550 …" to refuse the address for good), or to take its time over each
message (``data_delay``), so tests see what a real server's refusals and slowness do to the sender."""

from __future__ import annotations

import email
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from typing import Self


@dataclass
class Received:
    sender: str
    recipients: list[str]
    subject: str
    body: str


@dataclass
class FakeSMTPServer:
    # address -> answers to its RCPT, one per attempt, then "250 OK" (e.g. ["451 4.3.0 Try later"])
    rcpt_answers: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    rcpt_attempts: list[str] = field(default_factory=list)  # every address a sender asked for, in order
    data_delay: float = 0.0  # seconds before each message's data is accepted
    server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> Self:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 fake-smtp ESMTP ready")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    command = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("HELO", "EHLO"):
                        self.reply("250 fake-smtp")
                    elif verb == "MAIL":
                        sender, recipients = _address(command), []
                        self.reply("250 2.1.0 OK")
                    elif verb == "RCPT":
                        address = _address(command)
                        fake.rcpt_attempts.append(address)
                        answers = fake.rcpt_answers.get(address) or []
                        answer = answers.pop(0) if answers else "250 2.1.5 OK"
                        if answer.startswith("250"):
                            recipients.append(address)
                        self.reply(answer)
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        time.sleep(fake.data_delay)
                        message = email.message_from_bytes(data)
                        payload = message.get_payload(decode=True) or b""
                        fake.received.append(
                            Received(
                                sender=sender, recipients=recipients,
                                subject=str(make_header(decode_header(message["Subject"] or ""))),
                                body=payload.decode(message.get_content_charset() or "utf-8"),
                            )
                        )  # fmt: skip
                        self.reply("250 2.0.0 Queued")
                    elif verb == "RSET":
                        sender, recipients = "", []
                        self.reply("250 2.0.0 OK")
                    elif verb == "NOOP":
                        self.reply("250 2.0.0 OK")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 Bye")
                        return
                    else:
                        self.reply("502 5.5.2 Command not recognized")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="FakeSMTPServer", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def port(self) -> int:
        assert self.server is not None, "start() the fake first"
        return self.server.server_address[1]

    def to(self, subject_prefix: str = "") -> list[str]:
        """Every address a message was accepted for (one entry per message), in order."""
        return [r for m in self.received if m.subject.startswith(subject_prefix) for r in m.recipients]


def _address(command: str) -> str:
    """The address of ``MAIL FROM:<a@b> …`` or ``RCPT TO:<a@b>``."""
    return command.split(":", 1)[1].split(">", 1)[0].strip().lstrip("<")
