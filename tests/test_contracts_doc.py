"""docs/contracts.md against the code: the consumer events it documents are those of
sqslab/consumer/events.py, name by name and field by field, both ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sqslab.consumer import events as ev

CONTRACTS = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"
HOME = "sqslab/consumer/events.py"


def section(text: str, heading: str) -> str:
    """The body of the `## heading...` section (up to the next `## `)."""
    found = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"docs/contracts.md has no section '## {heading}'"
    return found.group(1)


def _outside_backticks(text: str, stop: str) -> str:
    """text up to the first `stop` that is not inside backticks."""
    inside = False
    for i, char in enumerate(text):
        if char == "`":
            inside = not inside
        elif not inside and text.startswith(stop, i):
            return text[:i]
    return text


def documented_fields(cell: str) -> list[str]:
    """The fields a table cell names: the backticked names before its first `: ` (what
    follows is prose), leaving out what parentheses say of them (`id` (null if ...),
    `reason` values); `side: client` names the field `side`."""
    names = re.sub(r"\([^()]*\)", "", _outside_backticks(cell, ": "))
    return [token.split(":", 1)[0].strip() for token in re.findall(r"`([^`]+)`", names)]


def parse_events(text: str) -> dict[str, list[str]]:
    """{event: its documented fields} from the Consumer events table, in its order."""
    body = section(text, "Consumer events")
    table: dict[str, list[str]] = {}
    for line in body.splitlines():
        row = re.fullmatch(r"\|\s*`(\w+)`\s*\|(.*)\|\s*", line)
        if row:
            assert row.group(1) not in table, f"docs/contracts.md lists the consumer event {row.group(1)!r} twice"
            table[row.group(1)] = documented_fields(row.group(2))
    return table


@pytest.fixture(scope="module")
def doc() -> str:
    return CONTRACTS.read_text(encoding="utf-8")


def test_the_parser_reads_a_row_as_the_doc_writes_it():
    assert documented_fields("`message_id`, `id` (null if unreadable), `seq`, `reason`: a processed (`stopping`) one") == \
        ["message_id", "id", "seq", "reason"]
    assert documented_fields("`api`, `rule`, `side: client`: a fault (`SQSLAB_SQS_FAULTS`)") == ["api", "rule", "side"]
    assert documented_fields("`api`, `attempt` (2, 3, ...), `error`: the SDK retries") == ["api", "attempt", "error"]


def test_the_doc_lists_the_events_of_the_code_both_ways(doc):
    documented = parse_events(doc)
    assert documented, "no consumer event rows found in docs/contracts.md's 'Consumer events' table"
    only_doc = sorted(set(documented) - ev.EVENTS)
    only_code = sorted(ev.EVENTS - set(documented))
    assert not only_doc, f"consumer events in docs/contracts.md but not in {HOME}: {only_doc}"
    assert not only_code, f"consumer events in {HOME} but not in docs/contracts.md: {only_code}"
    assert list(documented) == list(ev.FIELDS), f"docs/contracts.md lists the consumer events in another order than {HOME}"


def test_each_events_fields_are_the_codes_both_ways(doc):
    documented = parse_events(doc)
    differ = {}
    for name, fields in ev.FIELDS.items():
        said = documented.get(name)
        if said is not None and said != list(fields.required):
            differ[name] = {"docs/contracts.md": said, HOME: list(fields.required),
                            "only in the doc": sorted(set(said) - set(fields.required)),
                            "only in the code": sorted(set(fields.required) - set(said))}
    assert not differ, f"consumer event fields differ between docs/contracts.md and {HOME}: {differ}"


def test_the_common_fields_and_the_fifo_group_are_the_codes(doc):
    body = section(doc, "Consumer events")
    common = re.search(r"^Every event has (.*?)\.$", body, re.M)
    assert common, "docs/contracts.md no longer says which fields every consumer event has"
    assert documented_fields(common.group(1)) == list(ev.COMMON), (documented_fields(common.group(1)), ev.COMMON)
    group = re.search(r"^On a FIFO queue every event about a message also has `(\w+)`", body, re.M)
    assert group and group.group(1) == ev.GROUP, "docs/contracts.md no longer says which field a FIFO event about a message adds"
    # "about a message": the events whose documented fields name it (message_id).
    about = {name for name, fields in parse_events(doc).items() if "message_id" in fields}
    with_group = {name for name, fields in ev.FIELDS.items() if ev.GROUP in fields.optional}
    assert about == with_group == ev.ABOUT_A_MESSAGE, (about, with_group, ev.ABOUT_A_MESSAGE)
    optional = {name: fields.optional for name, fields in ev.FIELDS.items() if set(fields.optional) - {ev.GROUP}}
    assert not optional, f"optional fields in {HOME} that docs/contracts.md does not document: {optional}"


def test_the_events_a_program_may_print_are_the_codes(doc):
    body = section(doc, "A consumer program's environment")
    said = re.search(r"except the ones\s+only the built-in consumer writes: ((?:`\w+`,?\s*)+);", body)
    assert said, "docs/contracts.md no longer says which consumer events a program's output is not read for"
    assert set(re.findall(r"`(\w+)`", said.group(1))) == ev.BUILT_IN_ONLY
    mapping = re.search(r"only the Lambda\s+event source mapping writes: ((?:`\w+`,?\s*)+);", body)
    assert mapping and set(re.findall(r"`(\w+)`", mapping.group(1))) == ev.MAPPING_ONLY
    assert ev.PROGRAM_EVENTS == ev.EVENTS - ev.BUILT_IN_ONLY - ev.MAPPING_ONLY
