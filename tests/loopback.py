"""A Twisted server-side connection on a real loopback TCP connection, as daphne's listening port
builds one for each client: for tests/test_asgi_transport.py and bench/daphne_writes.py."""

from __future__ import annotations

import socket


def twisted_server_connection(transport_class, reactor) -> tuple[object, socket.socket]:
    """(the server's connection, the client's socket). The connection is built from
    ``transport_class`` (what ``tcp.Port.transport`` names) with a bare protocol; its socket is
    ``connection.socket``. The reactor is not run: the caller turns its loop if it needs to."""
    from twisted.internet.protocol import Protocol

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, address = listener.accept()
    listener.close()
    accepted.setblocking(False)
    protocol = Protocol()
    connection = transport_class(accepted, protocol, address, None, 1, reactor)
    protocol.makeConnection(connection)
    return connection, client
