"""The ledger as a pure function: every sent id gets exactly one fate, and the figures
follow from the events and the audit."""

from __future__ import annotations

from sqslab.truth.ledger import build_ledger, percentile
from sqslab.truth.store import Audit

T0 = 1_000_000.0


def sent(mid, at=0.0):
    return {"event": "sent", "source": "producer", "id": mid, "sent_at": T0 + at, "phase": "p"}


def consumer(kind, mid, at, task="task-1", receive_count=1, **extra):
    return {"event": kind, "source": "consumer", "id": mid, "ts": T0 + at, "task": task, "receive_count": receive_count, **extra}


def audit(at=100.0, **kwargs):
    return Audit(at=T0 + at, visibility_timeout=10.0, **kwargs)


def test_each_id_gets_one_fate_by_precedence():
    events = [sent(m) for m in "abcdefg"] + [
        consumer("received", "a", 1), consumer("processed", "a", 1.5),
        consumer("received", "b", 1), consumer("processed", "b", 2),
        consumer("received", "b", 12, task="task-2", receive_count=2), consumer("processed", "b", 13, task="task-2"),
        consumer("received", "c", 1), consumer("failed", "c", 1.1, reason="error"),
        consumer("received", "e", 95),  # in flight at the audit (95 + 10 > 100)
        consumer("received", "f", 50),  # its visibility ended long ago, and it is not in the queue
    ]
    ledger = build_ledger(events, audit(dlq_ids={"c"}, queued_ids={"d"}))
    assert ledger.fates() == {"a": "processed_once", "b": "duplicate", "c": "dead_lettered", "d": "still_queued",
                            "e": "still_queued", "f": "lost", "g": "lost"}
    assert ledger.counts == {"processed_once": 1, "duplicate": 1, "dead_lettered": 1, "still_queued": 2, "expired": 0, "purged": 0,
                             "lost": 2}
    assert sum(ledger.counts.values()) == ledger.figures["sent"] == 7
    assert [p["id"] for p in ledger.problems] == ["b", "c", "d", "e", "f", "g"]
    assert ledger.per_task == {"task-1": {"received": 5, "processed": 2, "failed": 1}, "task-2": {"received": 1, "processed": 1}}


def test_redeliveries_use_sqs_receive_count_when_consumers_logged_less():
    # a task took "a" in a batch and was killed before it started it: no event, but SQS counted it
    events = [sent("a"), consumer("received", "a", 20, task="task-2", receive_count=2), consumer("processed", "a", 21, task="task-2")]
    figures = build_ledger(events, audit()).figures
    assert figures["receives"] == 2 and figures["redeliveries"] == 1 and figures["receive_count.max"] == 2


def test_abandoned_and_released_count_as_deliveries():
    events = [sent("a"), consumer("abandoned", "a", 1), consumer("received", "a", 12, receive_count=2), consumer("processed", "a", 13)]
    ledger = build_ledger(events, audit())
    assert ledger.fates() == {"a": "processed_once"} and ledger.figures["redeliveries"] == 1


def test_processed_and_in_the_dlq_is_an_anomaly_not_two_fates():
    events = [sent("a"), consumer("received", "a", 1), consumer("processed", "a", 2)]
    ledger = build_ledger(events, audit(dlq_ids={"a", "stranger"}))
    assert ledger.fates() == {"a": "processed_once"}
    assert ledger.anomalies == ["a: processed and also in the DLQ (its delete did not take)",
                                "1 message(s) in the DLQ were not sent by this run's producer"]


def test_latency_from_send_to_first_processing():
    events = [sent("a", 0), sent("b", 1)] + [consumer("processed", "a", 2), consumer("processed", "b", 5), consumer("processed", "a", 9)]
    figures = build_ledger(events, audit()).figures
    assert (figures["latency.p50"], figures["latency.max"]) == (2.0, 4.0)


def test_delayed_message_is_still_queued():
    ledger = build_ledger([sent("a", 95)], Audit(at=T0 + 100, visibility_timeout=10, delay=30))
    assert ledger.fates() == {"a": "still_queued"}


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99), percentile([], 50)) == (50.0, 95.0, 99.0, None)


# -- FIFO: groups, order, duplicates, blocking ------------------------------------------------------


def sent_in(mid, seq, group, at=0.0, duplicate=False):
    return {"event": "sent", "source": "producer", "id": mid, "seq": seq, "sent_at": T0 + at, "phase": "p", "group": group,
            **({"duplicate_send": True} if duplicate else {})}


def test_order_violations_count_messages_that_overtook_an_unfinished_earlier_one():
    # group g: a fails at 1, b and c are processed at 2 and 3 (they overtook a), a at 12.
    # group h: d fails at 1, e waits, d is processed at 12, e at 13: in order.
    events = [sent_in("a", 1, "g"), sent_in("b", 2, "g"), sent_in("c", 3, "g"), sent_in("d", 4, "h"), sent_in("e", 5, "h"),
              consumer("received", "a", 1), consumer("failed", "a", 1, reason="error"),
              consumer("received", "b", 2), consumer("processed", "b", 2), consumer("received", "c", 3), consumer("processed", "c", 3),
              consumer("received", "a", 12, receive_count=2), consumer("processed", "a", 12),
              consumer("received", "d", 1), consumer("failed", "d", 1, reason="error"),
              consumer("received", "d", 12, receive_count=2), consumer("processed", "d", 12),
              consumer("received", "e", 13), consumer("processed", "e", 13)]
    ledger = build_ledger(events, audit(t0=T0))
    figures = ledger.figures
    assert (figures["groups"], figures["order_violations"]) == (2, 2)
    assert ledger.ordering["violations_by_group"] == [{"group": "g", "violations": 2}]
    # h waited behind d from its failure at 1 until d was done at 12: 11 s; g's later
    # messages were done by 3, so g waited 2 s.
    assert figures["group_blocked.max"] == 11.0
    assert [(b["group"], b["blocked"]) for b in ledger.ordering["blocked_groups"]] == [("h", 11.0), ("g", 2.0)]
    assert ledger.ordering["blocked_groups"][0]["intervals"] == [{"start": 1.0, "end": 12.0, "id": "d"}]
    series = ledger.ordering["blocked_series"]
    assert series["blocked"][5] == 1 and series["blocked"][2] == 2


def test_a_dead_lettered_head_blocks_its_group_until_its_last_timeout_ends():
    events = [sent_in("p", 1, "g"), sent_in("q", 2, "g")] + [
        e for n, t in enumerate((1, 11, 21), 1) for e in (consumer("received", "p", t, receive_count=n),
                                                          consumer("failed", "p", t, receive_count=n, reason="poison"))
    ] + [consumer("received", "q", 31.5), consumer("processed", "q", 32)]
    ledger = build_ledger(events, audit(at=200.0, dlq_ids={"p"}, t0=T0))
    assert ledger.fates() == {"p": "dead_lettered", "q": "processed_once"}
    assert ledger.figures["order_violations"] == 0
    assert ledger.figures["group_blocked.max"] == 30.0, "3 receives x 10 s visibility: the move happens at 31"


def test_duplicate_sends_delivered_or_dropped():
    events = [sent_in("a", 1, None), sent_in("a", 1, None, duplicate=True), sent_in("b", 2, None), sent_in("b", 2, None, duplicate=True),
              sent_in("c", 3, None),
              consumer("received", "a", 1, message_id="m1"), consumer("processed", "a", 1),
              consumer("received", "a", 2, message_id="m2"), consumer("processed", "a", 2),
              consumer("received", "b", 1, message_id="m3"), consumer("processed", "b", 1),
              consumer("received", "c", 1, message_id="m4"), consumer("processed", "c", 1)]
    ledger = build_ledger(events, audit())
    assert ledger.figures["sent"] == 3, "an id sent twice is one message"
    assert (ledger.figures["duplicate_sends"], ledger.figures["producer_duplicates"], ledger.figures["dedup_dropped"]) == (2, 1, 1)
    assert ledger.fates() == {"a": "duplicate", "b": "processed_once", "c": "processed_once"}
    assert ledger.figures["groups"] == 0 and ledger.figures["order_violations"] is None


def test_what_sqs_did_is_counted_and_each_duplicate_says_who_caused_it():
    """SQS-side events become figures; a duplicate whose message id SQS kept a copy of is
    SQS's, one the producer sent twice is the producer's, any other the consumer side's."""
    sqs_event = {"source": "sqs", "ts": T0 + 1}
    events = [sent(m) for m in "abc"] + [sent("b") | {"duplicate_send": True}] + [
        consumer("received", "a", 1, message_id="ma"), consumer("processed", "a", 1.1),
        {**sqs_event, "event": "sqs_behavior", "kind": "duplicate", "api": "DeleteMessage", "message_id": "ma"},
        consumer("received", "a", 5, receive_count=2, message_id="ma"), consumer("processed", "a", 5.1),
        consumer("received", "b", 1, message_id="mb1"), consumer("processed", "b", 1.1),
        consumer("received", "b", 1, message_id="mb2"), consumer("processed", "b", 1.2),
        consumer("received", "c", 1, message_id="mc"), consumer("processed", "c", 1.1),
        consumer("received", "c", 12, receive_count=2, message_id="mc"), consumer("processed", "c", 12.1),
        {**sqs_event, "event": "sqs_fault", "api": "DeleteMessage", "kind": "throttling"},
        {**sqs_event, "event": "sqs_fault", "api": "DeleteMessage", "kind": "throttling"},
        {**sqs_event, "event": "sqs_fault", "api": "SendMessageBatch", "kind": "internal"},
        {**sqs_event, "event": "sqs_behavior", "kind": "stale_receipt", "api": "DeleteMessage", "message_id": "mc"},
        consumer("retried", None, 2, api="DeleteMessage", attempt=2, error="RequestThrottled"),
        consumer("api_error", None, 3, api="DeleteMessage", error="RequestThrottled", attempts=4),
        {"source": "action", "event": "redriven", "count": 7},
    ]
    ledger = build_ledger(events, audit())
    assert {p["id"]: p["cause"] for p in ledger.problems} == {"a": "sqs", "b": "producer", "c": "consumer"}
    figures = ledger.figures
    assert (figures["faults.injected"], figures["faults.DeleteMessage"], figures["faults.SendMessageBatch"]) == (3, 2, 1)
    assert figures["faults.ReceiveMessage"] == 0
    assert (figures["sqs_duplicates"], figures["stale_receipts"], figures["sdk_retries"], figures["api_errors"]) == (1, 1, 1, 1)
    assert (figures["redriven"], figures["empty_receives"], figures["receives_lost"]) == (7, 0, 0)
    assert ledger.sqs == {"faults": {"DeleteMessage": {"throttling": 2}, "SendMessageBatch": {"internal": 1}},
                          "behavior": {"duplicate": 1, "stale_receipt": 1}, "retried": {"RequestThrottled": 1},
                          "api_errors": {"DeleteMessage": {"RequestThrottled": 1}}}


def test_an_exact_run_has_zero_sqs_figures_and_no_sqs_section():
    ledger = build_ledger([sent("a"), consumer("received", "a", 1), consumer("processed", "a", 1.1)], audit())
    assert ledger.sqs == {} and "sqs" not in ledger.as_dict()
    assert ledger.figures["faults.injected"] == 0 and ledger.figures["sqs_duplicates"] == 0


def test_the_live_processed_counter_counts_messages_not_processings(tmp_path):
    """The live `processed` never passes `sent`: a message processed twice counts once, and
    the extra processing is `processed_again` (the progress line shows both)."""
    import io

    from sqslab.run.progress import Progress
    from sqslab.run.recorder import Recorder

    recorder = Recorder(tmp_path, max_receive_count=3, dlq_enabled=True)
    recorder.start_clock()
    recorder.on_sent([{"id": "a", "seq": 1}, {"id": "b", "seq": 2}])
    recorder.take_consumer_events([{"event": "processed", "id": "a", "seq": 1, "ts": 1.0},
                                   {"event": "processed", "id": "a", "seq": 1, "ts": 2.0},
                                   {"event": "processed", "id": "b", "seq": 2, "ts": 3.0}])
    counters = recorder.counters()
    assert counters["sent"] == 2 and counters["processed"] == 2 and counters["processed_again"] == 1
    assert "processed 2 (+1 again)" in Progress(10.0, stream=io.StringIO()).format({"t": 1, **counters})
    recorder.close()


def test_a_reading_from_before_the_end_of_the_load_does_not_drain():
    """A sample that began just before the producer finished and read an empty queue once
    gave drain_time -16 ms: it says nothing of the drain."""
    from sqslab.run.sampler import Drain

    empty = {"queue.visible": 0, "queue.in_flight": 0, "queue.delayed": 0}
    drain = Drain()
    drain.producer_end = 100.0
    drain.note(empty, 99.984)
    assert drain.drain_time() is None
    drain.note(empty, 100.5)
    assert drain.drain_time() == 0.5


def test_a_crash_the_task_did_not_tell_of_counts_in_crashes():
    """`command: ["false"]` restarted 58 times with `crashes 0`: a task that exits non-zero
    on its own counts as a crash whether or not it printed a `crashed` event (once)."""
    events = [sent("a"), consumer("crashed", "a", 1.0),
              {"event": "task_exited", "source": "target", "task": "task-1", "reason": "crashed", "told": True, "ts": 1.1},
              {"event": "task_exited", "source": "target", "task": "task-2", "reason": "crashed", "told": False, "ts": 2.0},
              {"event": "task_exited", "source": "target", "task": "task-3", "reason": "killed", "told": False, "ts": 3.0}]
    ledger = build_ledger(events, audit())
    assert ledger.figures["crashes"] == 2
