"""The scenario format: what a scenario file may say and what it means.

`settings` is the table of every setting (schema, README, tfvars, queue attributes and
the consumer's environment come from it); `document` parses YAML with positions; `schema`
and `validation` say every problem at once; `names`, `units`, `bodies` (body templates) and
`timeline` are the format's vocabulary; `model` is a resolved scenario and `load` makes one.
"""
