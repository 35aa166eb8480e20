"""The coordinator's own receive and send of a message (pyzmq's multipart calls without their per-frame enum
arithmetic): the same frames, whole, in order, over real ZeroMQ sockets."""
import pytest
import zmq

from synthfarm.farm.coordinator import receive, send


@pytest.fixture
def pair():
    context = zmq.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    for sock in (router, dealer):
        sock.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.ROUTER_MANDATORY, 0)  # as the coordinator's: a reply to a peer gone is dropped
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer.setsockopt(zmq.ROUTING_ID, b"worker-1")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    yield router, dealer
    context.destroy(linger=0)


def test_a_message_is_received_whole_with_its_sender_and_none_waiting_raises_again(pair):
    router, dealer = pair
    with pytest.raises(zmq.Again):
        receive(router)
    messages = [[b"SF1", b"DONE", b'{"attempt_id": "a"}'], [b"SF1", b"", b"x" * 100_000], [b"one"]]
    for frames in messages:
        dealer.send_multipart(frames)
    got = []
    while len(got) < len(messages):
        assert router.poll(5000)
        got.append(receive(router))
    assert got == [[b"worker-1", *frames] for frames in messages]
    with pytest.raises(zmq.Again):
        receive(router)


def test_a_message_is_sent_whole_in_order_and_one_to_a_peer_gone_is_dropped(pair):
    router, dealer = pair
    dealer.send_multipart([b"SF1", b"HELLO", b"{}"])  # the router learns the dealer's identity
    assert router.poll(5000)
    receive(router)
    send(router, [b"nobody", b"SF1", b"TASK", b"{}"])  # no such peer: dropped, no error
    send(router, [b"worker-1", b"SF1", b"TASK", b'{"job_id": 7}'])
    send(router, [b"worker-1", b"single"])
    assert dealer.poll(5000)
    assert dealer.recv_multipart() == [b"SF1", b"TASK", b'{"job_id": 7}']
    assert dealer.poll(5000)
    assert dealer.recv_multipart() == [b"single"]
    assert not dealer.poll(100)
