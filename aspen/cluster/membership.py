"""Membership and leadership of one node: init, learners, joint-consensus changes, transfer;
and the replicated address book (who is reachable where)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import trio

from aspen.cluster.errors import AlreadyInitialized, ClusterTimeout, NotLeaderError
from aspen.cluster.host import NodeHost
from aspen.raft import Membership, ProposalDropped, RaftCore, Role
from transports.settings import split_address

log = logging.getLogger("aspen.cluster")


class MembershipControl:
    """The control-plane calls that change who is in the group and who leads it."""

    def __init__(
        self,
        host: NodeHost,
        *,
        add_peer_item: Callable[[int, str], None],
        drop_lease: Callable[[], None],
    ) -> None:
        self.host = host
        self._add_peer_item = add_peer_item  # into the leader's next batch (writes)
        self._drop_lease = drop_lease  # (reads)

    def require_leader(self) -> RaftCore:
        core = self.host.raft
        if core.role is not Role.LEADER:
            raise NotLeaderError(core.leader_id)
        return core

    def campaign_if_alone(self) -> None:
        """The only voter need not wait an election timeout: fast-forward its logical clock
        (timing never affects Raft's safety, and nobody else can be elected)."""
        host = self.host
        core = host.raft
        if core.membership.voters == {host.id} and core.role is not Role.LEADER:
            for _ in range(2 * host.settings.election_ticks):
                core.tick()
                if core.leader_id == host.id:
                    break
            host.kick()

    def init(self, voters: Iterable[int]) -> None:
        core = self.host.raft
        if core.last_index != 0 or core.term != 0 or core.snapshot is not None:
            raise AlreadyInitialized(f"node {self.host.id} already has raft state")
        core.bootstrap(Membership(voters=frozenset(voters)))
        self.campaign_if_alone()
        self.host.kick()

    async def add_learner(self, node: int, address: str, curve_key: bytes | None = None) -> None:
        core = self.require_leader()
        if node in core.membership.all_nodes:
            return
        learn_peer(self.host, node, address, curve_key)
        self._add_peer_item(node, address)
        m = core.membership
        await self._change(m.voters, m.learners | {node})

    async def change_membership(
        self, voters: Iterable[int], learners: Iterable[int] | None = None
    ) -> None:
        core = self.require_leader()
        target = frozenset(voters)
        kept = core.membership.learners if learners is None else frozenset(learners)
        await self._change(target, kept - target)

    async def _change(self, voters: frozenset[int], learners: frozenset[int]) -> None:
        host = self.host
        target = Membership(voters=voters, learners=learners)
        with trio.move_on_after(host.settings.request_timeout) as scope:
            while True:
                core = self.require_leader()
                try:
                    core.change_membership(voters, learners)
                    host.kick()
                    break
                except ProposalDropped:
                    await trio.sleep(host.settings.tick_interval)
            while True:
                core = host.raft
                if core.membership == target and core.membership_index <= core.commit_index:
                    return  # (a leader that removed itself has stepped down by now)
                core = self.require_leader()
                if (
                    core.membership != target
                    and not core.membership.is_joint
                    and (core.membership_index <= core.commit_index)
                ):
                    raise ClusterTimeout("the membership change was superseded")
                await trio.sleep(host.settings.tick_interval / 4)
        if scope.cancelled_caught:
            raise ClusterTimeout("membership change did not commit within the request deadline")

    async def step_down(self, timeout: float | None = None) -> bool:
        host = self.host
        core = host.raft
        if core.role is not Role.LEADER:
            return True
        candidates = sorted(core.membership.voters - {host.id})
        if not candidates:
            return False  # a one-node group has nobody to hand over to

        def match(peer: int) -> int:
            pr = core.progress(peer)
            return -1 if pr is None else pr.match

        best = max(candidates, key=match)
        with trio.move_on_after(timeout if timeout is not None else host.settings.election_timeout):
            return await self.transfer_leader(best)
        return False

    async def transfer_leader(self, to: int) -> bool:
        host = self.host
        core = self.require_leader()
        if to == host.id:
            return True
        self._drop_lease()  # TimeoutNow bypasses the followers' lease: drop ours
        core.transfer_leadership(to)
        host.kick()
        with trio.move_on_after(host.settings.request_timeout):
            while host.raft.leader_id != to:
                await trio.sleep(host.settings.tick_interval / 4)
            return True
        return False

    def publish_addresses(self) -> None:
        """A new leader records the addresses it knows, so every member (and later learners)
        can reach every other through the replicated address book."""
        host = self.host
        known: dict[int, str] = {}
        transport = host.transport
        if transport is not None:
            known.update(transport.peers)
            if valid_address(transport.address):
                known[host.id] = transport.address
        for node, address in sorted(known.items()):
            if host.state.peers.get(node) != address and valid_address(address):
                self._add_peer_item(node, address)


def learn_peer(host: NodeHost, node: int, address: str, curve_key: bytes | None = None) -> None:
    """Tell the transport where `node` is (from the address book or an add_learner call)."""
    transport = host.transport
    if transport is None or node == host.id or not valid_address(address):
        return
    if transport.peers.get(node) != address and not (
        host.settings.transport == "memory" and node in transport.peers
    ):
        try:
            transport.add_peer(node, address, curve_key)
        except ValueError as exc:  # e.g. CURVE on and no public key known for it
            log.warning(
                "node %d: cannot add peer %d at %s: %s", host.id, node, address, exc
            )


def valid_address(address: str) -> bool:
    try:
        split_address(address)
    except ValueError:
        return False
    return True
