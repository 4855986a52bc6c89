"""The finality gadget over an in-memory bus: several gadgets finalize one chain with shuffled
delivery, drops, a crashed voter, a partition and a byzantine double-voter, and no two ever
finalize different blocks at one height (the harness checks that after every step)."""

from __future__ import annotations

from consensus.finality import ACCEPT, IGNORE, REJECT, FinalityConfig, FinalityGadget
from consensus.finality_messages import Vote, VoterSet, decode_justification, decode_message
from runtime.finality_vote import PRECOMMIT, PREVOTE
from tests.consensus.finality_harness import GENESIS, MemoryChain, MemoryRecord, Network, child, make_keys


def grow(net, parent, count, names=None, run_ms=1000, tag=0, on_step=None):
    """Extend `parent` by `count` blocks, one per `run_ms` of simulated time."""
    for _ in range(count):
        parent = child(parent, tag)
        net.give_block(parent, names)
        net.run(run_ms, on_step=on_step)
    return parent


def test_finality_sole_voter_finalizes_each_block_at_once():
    net = Network(1)
    head = GENESIS
    for _ in range(5):
        head = child(head)
        net.give_block(head)
        assert net.nodes["n0"].chain.finalized == head  # no message needed: its own vote is >2/3
    justification = decode_justification(net.nodes["n0"].chain.justifications[head.hash])
    assert [v.voter for v in justification.precommits] == [net.keys[0].public]


def test_finality_four_voters_finalize_one_chain_with_shuffled_delivery():
    net = Network(4, seed=1)
    head = grow(net, GENESIS, 20)
    net.run(3000)
    assert all(n >= head.number - 1 for n in net.finalized_numbers().values()), net.finalized_numbers()
    assert len({net.nodes[n].chain.finalized_chain()[15] for n in net.nodes}) == 1


def test_finality_survives_message_drops_by_rebroadcast():
    net = Network(4, seed=2, drop=0.3)
    head = grow(net, GENESIS, 15)
    net.run(10_000)
    assert min(net.finalized_numbers().values()) >= head.number - 2, net.finalized_numbers()


def test_finality_three_of_four_keep_finalizing_and_restarted_voter_rejoins():
    net = Network(4, seed=3)
    head = grow(net, GENESIS, 5)
    net.crash("n3")
    head = grow(net, head, 10, names=["n0", "n1", "n2"])
    net.run(6000)
    assert min(net.finalized_numbers(["n0", "n1", "n2"]).values()) >= head.number - 2
    net.start("n3")  # same signing record: it must not vote twice in any round it voted in
    net.sync_blocks("n3")
    net.run(1000)
    head = grow(net, head, 8)
    net.run(6000)
    assert net.nodes["n3"].chain.finalized.number >= head.number - 2
    n3 = net.nodes["n3"].gadget
    assert any(r.our_prevote is not None for r in n3.rounds.values())


def test_finality_two_two_partition_stops_without_conflict_and_heals():
    net = Network(4, seed=4)
    head = grow(net, GENESIS, 3)
    net.run(3000)
    net.partition = [{"n0", "n1"}, {"n2", "n3"}]
    grow(net, head, 5, names=["n0", "n1"], tag=1)
    grow(net, head, 6, names=["n2", "n3"], tag=2)
    net.run(5000)
    # Neither half holds more than 2/3 of the stake: nothing past the shared blocks is final.
    assert max(net.finalized_numbers().values()) <= head.number
    net.partition = None
    for name in net.nodes:
        net.sync_blocks(name)
    assert len({net.nodes[n].chain.best.hash for n in net.nodes}) == 1  # the longer fork wins
    tip = grow(net, net.nodes["n2"].chain.best, 4)
    net.run(8000)
    assert min(net.finalized_numbers().values()) >= tip.number - 2, net.finalized_numbers()


def test_finality_byzantine_double_voter_is_reported_and_safety_holds():
    net = Network(4, seed=5)
    byz = net.keys[3]
    net.crash("n3")  # n3's honest gadget is replaced by the byzantine script below
    fork_a = grow(net, GENESIS, 3, tag=1)
    fork_b = child(child(GENESIS, 9), 9)
    for header in (child(GENESIS, 9), fork_b):
        net.give_block(header, ["n2"])

    def byzantine(net_):
        rounds = {n.gadget.round for n in net_.nodes.values() if n.gadget is not None}
        for rnd in rounds:
            for step in (PREVOTE, PRECOMMIT):
                for target in (fork_a, fork_b):
                    vote = Vote(0, rnd, step, target.hash, target.number, byz.public, b"")
                    signed = Vote(0, rnd, step, target.hash, target.number, byz.public,
                                  byz.sign(vote.payload(GENESIS.hash)))
                    net_.nodes["n3"].outbox.append(signed.encode())

    net.run(6000, on_step=byzantine)
    grow(net, fork_a, 4, names=["n0", "n1", "n2"], tag=1)
    net.run(6000, on_step=byzantine)
    assert min(net.finalized_numbers(["n0", "n1", "n2"]).values()) >= fork_a.number
    reports = [e for name in ("n0", "n1", "n2") for e in net.nodes[name].equivocations]
    assert reports and all(e.first.voter == byz.public and e.first.target_hash != e.second.target_hash for e in reports)


def test_finality_observer_node_follows_by_commit_messages():
    net = Network(4, seed=6, observers=1)
    head = grow(net, GENESIS, 6)
    net.run(4000)
    assert net.nodes["n4"].chain.finalized.number >= head.number - 1


def test_finality_old_set_finalizes_the_change_block_and_the_new_set_takes_over():
    keys = make_keys(4)
    old = VoterSet(0, tuple((k.public, 100) for k in keys[:3]))
    new = VoterSet(1, tuple((k.public, 100) for k in keys[1:]))
    net = Network(4, seed=7, voter_sets={0: old, 5: new})
    net.keys = keys
    head = grow(net, GENESIS, 10)
    net.run(6000)
    for node in net.nodes.values():
        assert node.chain.finalized.number >= head.number - 1
        change = node.chain.finalized_chain()[5]
        justification = decode_justification(node.chain.justifications[change]) if change in node.chain.justifications else None
        if justification is not None:
            assert justification.set_id == 0
        assert node.gadget.voters.set_id == 1
    # No justification of the old set reaches past the change block.
    for node in net.nodes.values():
        for block_hash, data in node.chain.justifications.items():
            just = decode_justification(data)
            assert (just.set_id == 0) == (node.chain.headers[block_hash].number <= 5)


def _voters(n=4):
    keys = make_keys(n)
    return keys, VoterSet(0, tuple((k.public, 100) for k in keys))


def _gadget(chain, keys=None, key=None):
    return FinalityGadget(chain, FinalityConfig(genesis_hash=GENESIS.hash), lambda data: None, 0,
                          signer=key, record=MemoryRecord())


def _signed(key, rnd, step, target, set_id=0):
    unsigned = Vote(set_id, rnd, step, target.hash, target.number, key.public, b"")
    return Vote(set_id, rnd, step, target.hash, target.number, key.public, key.sign(unsigned.payload(GENESIS.hash)))


def test_finality_rejects_bad_votes_with_a_reason():
    keys, voters = _voters()
    chain = MemoryChain({0: voters})
    b1 = child(GENESIS)
    chain.add(b1)
    gadget = _gadget(chain)
    outsider = make_keys(5)[4]
    good = _signed(keys[0], 1, PREVOTE, b1)
    forged = Vote(0, 1, PREVOTE, b1.hash, 1, keys[1].public, good.signature)
    cases = {
        b"\x00garbage": REJECT,
        good.encode() + b"\x00": REJECT,
        _signed(outsider, 1, PREVOTE, b1).encode(): REJECT,
        forged.encode(): REJECT,
        _signed(keys[0], 1, PREVOTE, b1, set_id=7).encode(): IGNORE,
        good.encode(): ACCEPT,
    }
    for data, kind in cases.items():
        verdict = gadget.on_message(data, 0)
        assert verdict.kind == kind and (kind == ACCEPT or verdict.reason), (data[:20], verdict)
    assert gadget.on_message(good.encode(), 0).kind == IGNORE  # a duplicate
    assert chain.finalized == GENESIS


def _justification_for(keys, target, signers, set_id=0, rnd=1):
    from consensus.finality_messages import Justification

    return Justification(set_id, rnd, target.hash, target.number,
                         tuple(_signed(k, rnd, PRECOMMIT, target, set_id) for k in signers), ())


def test_finality_import_justification_checks_stake_signatures_voters_and_set():
    import pytest

    from consensus.finality_messages import JustificationError

    keys, voters = _voters()
    chain = MemoryChain({0: voters})
    b1 = child(GENESIS)
    b2 = child(b1)
    chain.add(b1)
    chain.add(b2)
    gadget = _gadget(chain)
    outsider = make_keys(5)[4]
    bad_sig = _justification_for(keys, b2, keys[:3])
    broken = bad_sig.precommits[0]
    bad_sig = type(bad_sig)(0, 1, b2.hash, 2, (Vote(0, 1, PRECOMMIT, b2.hash, 2, broken.voter, bytes(64)),)
                            + bad_sig.precommits[1:], ())
    cases = {
        "not more than 2/3": _justification_for(keys, b2, keys[:2]).encode(),
        "bad signature": bad_sig.encode(),
        "not a voter": _justification_for(keys, b2, keys[:2] + [outsider]).encode(),
        "expected set 0": _justification_for(keys, b2, keys[:3], set_id=1).encode(),
        "listed twice": _justification_for(keys, b2, [keys[0], keys[0], keys[1]]).encode(),
        "malformed": b"\x93\x01",
    }
    for reason, data in cases.items():
        with pytest.raises(JustificationError, match=reason):
            gadget.import_justification(b2.hash, data, 0)
        assert chain.finalized == GENESIS
    # A precommit for a descendant counts for the ancestor; the header travels in the ancestry.
    from consensus.finality_messages import Justification

    on_b2 = _justification_for(keys, b2, keys[:3])
    for_b1 = Justification(0, 1, b1.hash, 1, on_b2.precommits, (b2,))
    assert gadget.import_justification(b1.hash, for_b1.encode(), 0)
    assert chain.finalized == b1
    from consensus.finality_messages import Commit

    assert decode_message(Commit(for_b1).encode()) == Commit(for_b1)


def test_finality_restart_never_votes_twice_in_a_round():
    keys, voters = _voters(1)
    chain = MemoryChain({0: voters})
    record = MemoryRecord()
    before = []
    gadget = FinalityGadget(chain, FinalityConfig(genesis_hash=GENESIS.hash), before.append, 0, signer=keys[0],
                            record=record)
    b1 = child(GENESIS)
    chain.add(b1)
    gadget.on_block(0)
    assert chain.finalized == b1
    last = record.get_vote_record(keys[0].public).position
    # A second process with the same record (a restart) resumes its last round: it may only
    # re-issue the very votes it signed there (byte for byte), then votes in later rounds.
    after = []
    again = FinalityGadget(chain, FinalityConfig(genesis_hash=GENESIS.hash), after.append, 0, signer=keys[0],
                           record=record)
    b2 = child(b1)
    chain.add(b2)
    again.on_block(10)
    assert chain.finalized == b2
    for data in after:
        vote = decode_message(data)
        if isinstance(vote, Vote) and (vote.set_id, vote.round, vote.step) <= last:
            assert data in before


def test_finality_asks_again_for_a_vote_target_whose_fetch_failed():
    """n0 and n1 prevote a block of a fork that only they hold (built before they connected),
    the others prevote the chain everyone then follows; n0 and n1 see round 1 complete and move
    to round 2, n2 and n3 join them there. These two vote only once round 1 completes in their
    view, which needs the fork's prevotes counted, so without the block all four wait for ever.
    The fetches asked for in the first seconds fail (no peer yet); asking again brings it."""
    net = Network(4, seed=8)
    fork = child(GENESIS, 1)
    net.give_block(fork, ["n0", "n1"])
    asked: dict[str, list[int]] = {"n2": [], "n3": []}

    def fetch(net_):
        for name, times in asked.items():
            node = net_.nodes[name]
            for block_hash, _number in node.wanted:
                times.append(net_.now)
                if net_.now > 3000:
                    net_.give_block(net_.blocks[block_hash], [name])
            node.wanted.clear()

    head = grow(net, GENESIS, 3, tag=2, on_step=fetch)
    assert {net.nodes[n].gadget.round for n in net.nodes} == {2} and all(asked.values())
    assert fork.hash not in net.nodes["n2"].chain.headers
    head = grow(net, head, 3, on_step=fetch)
    net.run(4000, on_step=fetch)
    assert min(net.finalized_numbers().values()) >= head.number - 1, net.finalized_numbers()
    assert all(max(times) > 3000 for times in asked.values())  # asked again after the failures


def test_finality_restarted_voter_resends_its_votes_of_the_round_before():
    """n0's round-1 votes reach n2 but not n1, and n3 is down: n0 and n2 see round 1 complete,
    move to round 2, and n0 restarts there. n1, and n3, which starts without blocks and so
    cannot prevote in round 1 before it joins round 2, vote there only once round 1 completes
    in their view, which needs n0's round-1 votes. Only their signer resends votes, so the
    restarted n0 must re-issue them from its signing record, or all four wait for ever."""
    net = Network(4, seed=9)
    net.crash("n3")
    net.cut = {("n0", "n1")}
    b1 = child(GENESIS)
    net.give_block(b1, ["n0", "n1", "n2"])
    net.run(4000)
    assert [net.nodes[n].gadget.round for n in ("n0", "n1", "n2")] == [2, 1, 2]
    net.crash("n0")
    net.run(1000)
    net.start("n0")  # same signing record: it resumes round 2
    net.cut = set()
    net.start("n3")
    net.run(3000)
    net.sync_blocks("n3")
    head = grow(net, b1, 4)
    net.run(6000)
    assert min(net.finalized_numbers().values()) >= head.number - 1, net.finalized_numbers()


def _commit_senders(net):
    """Commit target -> the nodes that broadcast a commit for it."""
    from consensus.finality_messages import Commit

    senders: dict[bytes, set[str]] = {}
    for name, data in net.sent:
        message = decode_message(data)
        if isinstance(message, Commit):
            senders.setdefault(message.justification.target_hash, set()).add(name)
    return senders


def test_finality_voters_take_turns_to_send_a_rounds_commit():
    """Every voter that sees the precommits finalizes: when each sent its commit at once, every
    node got one per voter per round (most of an 8-validator devnet's gossip)."""
    net = Network(4, seed=11)
    head = grow(net, GENESIS, 12)
    net.run(3000)
    assert min(net.finalized_numbers().values()) >= head.number - 1
    senders = _commit_senders(net)
    assert len(senders) >= 6
    # Each commit went out from the voter whose turn it was, and from another only where the
    # first had not reached it in time (or a periodic resend): far below one per voter.
    assert sum(len(s) for s in senders.values()) / len(senders) <= 2.0, senders


def test_finality_the_next_voter_sends_the_commit_when_the_first_in_turn_is_down():
    """An observer that hears only commits still follows, with the voter first in turn for
    every other round crashed."""
    net = Network(4, seed=12, observers=1)
    net.commits_only = {"n4"}
    net.crash("n0")
    head = grow(net, GENESIS, 10, names=["n1", "n2", "n3", "n4"])
    net.run(3000)
    assert net.nodes["n4"].chain.finalized.number >= head.number - 1
    assert "n0" not in set().union(*_commit_senders(net).values())


def test_finality_a_forged_commit_does_not_silence_ours():
    from consensus.finality_messages import Commit, Justification

    keys, voters = _voters()
    chain = MemoryChain({0: voters})
    b1 = child(GENESIS)
    chain.add(b1)
    sent = []
    # keys[3]'s commit of round 1 waits two turns; of round 2, one.
    spacing = FinalityConfig(genesis_hash=GENESIS.hash).commit_spacing_ms
    gadget = FinalityGadget(chain, FinalityConfig(genesis_hash=GENESIS.hash), sent.append, 0, signer=keys[3],
                            record=MemoryRecord())
    for key in keys[:3]:
        gadget.on_message(_signed(key, 1, PREVOTE, b1).encode(), 0)
    gadget.on_tick(0)
    for key in keys[:3]:
        gadget.on_message(_signed(key, 1, PRECOMMIT, b1).encode(), 0)
    assert chain.finalized == b1
    assert not [d for d in sent if isinstance(decode_message(d), Commit)]  # not its turn yet
    valid = _justification_for(keys, b1, keys[:3])
    forged = Justification(0, 1, b1.hash, 1, tuple(Vote(v.set_id, v.round, v.step, v.target_hash, v.target_number,
                                                        v.voter, bytes(64)) for v in valid.precommits), ())
    assert gadget.on_message(Commit(forged).encode(), 100).kind == IGNORE
    gadget.on_tick(2 * spacing)
    assert [d for d in sent if isinstance(decode_message(d), Commit)]  # its own went out in its turn
    # A valid commit as high, heard before its turn, makes its own unneeded.
    sent.clear()
    b2 = child(b1)
    chain.add(b2)
    gadget.on_block(1000)
    for step in (PREVOTE, PRECOMMIT):
        for key in keys[:3]:
            gadget.on_message(_signed(key, 2, step, b2).encode(), 1000)
        gadget.on_tick(1000)
    assert chain.finalized == b2
    gadget.on_message(Commit(_justification_for(keys, b2, keys[:3], rnd=2)).encode(), 1100)
    gadget.on_tick(1000 + 2 * spacing)
    assert not [d for d in sent if isinstance(decode_message(d), Commit)]


def test_finality_votes_are_resent_while_a_round_is_stuck_not_while_rounds_move():
    """Resending every voter's votes every 2 s was a third of what a healthy network sent."""
    net = Network(4, seed=13)
    head = grow(net, GENESIS, 12)
    net.run(3000)
    assert min(net.finalized_numbers().values()) == head.number
    resent = len(net.sent) - len(set(net.sent))
    assert resent <= 40, resent  # the resend every 8 s, and rounds that waited on a late block
    # A stuck round (one of four voters silent, a fork no one can finalize yet) is resent.
    net.partition = [{"n0", "n1"}, {"n2", "n3"}]
    grow(net, head, 1, names=["n0"], tag=1)
    before = len(net.sent)
    net.run(6000)
    own = [data for name, data in net.sent[before:] if name == "n1"]
    assert len(own) > len(set(own))


def test_finality_runs_one_round_per_new_head_not_two():
    """A round is completable before its precommits finalize anything; prevoting the same head
    again at once in the next round ran two rounds, and twice the votes, per block."""
    net = Network(4, seed=16)
    head = grow(net, GENESIS, 12)
    net.run(3000)
    assert min(net.finalized_numbers().values()) == head.number
    assert max(node.gadget.round for node in net.nodes.values()) <= head.number + 2
    # With no new block a round still prevotes its head after the idle time (liveness).
    tip = child(head)
    net.give_block(tip, ["n0", "n1", "n2"])  # n3 never hears of it: it prevotes head
    net.run(12_000)
    assert net.nodes["n0"].chain.finalized == tip
