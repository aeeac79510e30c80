"""Malformed peer messages are dropped and counted: no crash, no change of state.

Frames built from the fuzz corpus (harness.fuzz) and mutated are handed to a follower as if
from the wire, from a real member: the ones that do not decode (as an envelope, or as the
payload their kind says) must change nothing (term, leader, log, keyspace) and be counted
(the transport's drop stats for envelopes, raft_peer_messages_dropped for payloads); the
cluster keeps serving.
"""

from __future__ import annotations

import random

import cbor2
import trio

from aspen.cluster import forward
from aspen.pubsub import wire
from aspen.raft.errors import RaftDecodeError
from aspen.raft.wire import decode_message
from aspen.resp.values import OK
from harness.cluster import InProcessCluster
from harness.fuzz import _peer_seeds, mutate
from transports.envelope import Envelope, EnvelopeError, MessageKind, decode, encode


def _decodes(kind: MessageKind, payload: bytes) -> bool:
    try:
        if kind is MessageKind.RAFT:
            decode_message(payload)
        elif kind is MessageKind.PUBSUB:
            wire.decode(payload)
        else:
            forward.decode(payload)
    except (RaftDecodeError, forward.ForwardDecodeError, wire.PubSubDecodeError):
        return False
    return True


async def test_garbage_from_a_member_changes_nothing(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    client = cluster3.client(leader.id)
    assert await client.cmd("SET", "k", "v") == OK
    await cluster3.wait_converged()
    target = next(n for n in cluster3.running() if n.id != leader.id)
    before = (target.core.term, target.leader_id, target.core.commit_index,
              target.state.applied_index, target.state.digest())
    dropped_before = target.stats.peer_messages_dropped
    rng = random.Random(17)
    seeds = [decode(s) for s in _peer_seeds()]
    frames = [encode(Envelope(e.kind, "harness", leader.id, e.payload)) for e in seeds]
    sent_payloads = sent_envelopes = 0
    while sent_payloads < 300 or sent_envelopes < 300:
        env = rng.choice(seeds)
        if rng.random() < 0.5:  # a bad payload in a good envelope
            payload = mutate(env.payload, rng, [e.payload for e in seeds])
            if _decodes(env.kind, payload):
                continue
            cluster3.hub.inject(target.id, encode(Envelope(env.kind, "harness", leader.id,
                                                           payload)), leader.id)
            sent_payloads += env.kind is not MessageKind.PUBSUB
        else:  # a bad envelope
            frame = mutate(rng.choice(frames), rng, frames)
            try:
                decode(frame)
                continue
            except EnvelopeError:
                pass
            cluster3.hub.inject(target.id, frame, leader.id)
            sent_envelopes += 1
        if rng.random() < 0.05:
            await trio.sleep(0)
        if rng.random() < 0.02:  # garbage that is not even CBOR
            cluster3.hub.inject(target.id, cbor2.dumps(rng.randbytes(40))[:20], leader.id)
    await trio.sleep(0.5)
    after = (target.core.term, target.leader_id, target.core.commit_index,
             target.state.applied_index, target.state.digest())
    assert after == before
    assert target.stats.peer_messages_dropped - dropped_before == sent_payloads
    transport = cluster3.hub.transport(target.id)
    assert transport is not None and sum(transport.stats.dropped.values()) >= sent_envelopes
    # and it still works
    assert await cluster3.client(target.id).cmd("SET", "k2", "v2") == OK
    await cluster3.wait_converged()
    assert len(set(cluster3.digests().values())) == 1
