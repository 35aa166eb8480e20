"""Waking a thread that sleeps in ``zmq.Poller.poll`` from another thread (an inproc PAIR, as the ZeroMQ guide
signals between threads), so that a loop may sleep long and still stop at once."""
from __future__ import annotations

import uuid

import zmq


class Wake:
    def __init__(self, context: zmq.Context):
        self.context, self.endpoint = context, f"inproc://wake-{uuid.uuid4().hex}"

    def socket(self) -> zmq.Socket:
        """The socket the sleeping thread polls (made in that thread; it closes it when it leaves)."""
        sock = self.context.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        return sock

    def nudge(self) -> None:
        """Wake the thread (nothing happens if it is not polling yet or has left: it checks its stop flag first)."""
        sock = self.context.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        try:
            sock.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass
        finally:
            sock.close()
