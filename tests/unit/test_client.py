"""The farm client keeps one socket between requests (the ZeroMQ guide's Lazy Pirate), against a coordinator
played by a ROUTER on loopback: every request of a client comes from one peer, and after a request that got no
answer in time the socket is a fresh one, so the late answer is never taken for the next request's."""
import threading

import zmq

from synthfarm.farm import protocol as p
from synthfarm.farm.client import FarmClient, FarmError


def answer(router, data, frames=None):
    identity, *_ = frames or router.recv_multipart()
    router.send_multipart([identity, *p.encode("REPLY", p.Reply(ok=True, data=data))])
    return identity


def test_one_socket_per_client_and_a_fresh_one_after_a_timeout():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    client = FarmClient(f"tcp://127.0.0.1:{port}", timeout=0.5, context=context)
    try:
        peers = []
        for n in range(3):
            thread = threading.Thread(target=lambda n=n: peers.append(answer(router, {"n": n})))
            thread.start()
            assert client.status() == {"n": n}
            thread.join()
        assert len(set(peers)) == 1, "a socket per request"
        late = None
        try:
            client.status()  # not answered in time
        except FarmError as err:
            assert "no answer" in str(err)
            late = router.recv_multipart()
        assert late is not None
        answer(router, {"n": "late"}, late)  # the answer arrives after the client gave up
        thread = threading.Thread(target=lambda: peers.append(answer(router, {"n": "next"})))
        thread.start()
        assert client.status() == {"n": "next"}  # never the late one
        thread.join()
        assert peers[-1] != peers[0]  # a fresh socket after the timeout
    finally:
        client.close()
        router.close()
        context.term()  # returns: the client's socket is closed
