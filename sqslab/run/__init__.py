"""Running a scenario: the `runner` provisions a target, starts the consumers, drives the
`producer`, the `scheduler` (its `actions`) and the `sampler` from t0, `settle`s, audits the
queues and writes the `summary`; the `recorder` keeps events.jsonl and `progress` shows the
run live.
"""
