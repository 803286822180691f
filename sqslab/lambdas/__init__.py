"""Lambda consumers on this machine: execution environments that run your handler with
the runtime interface client AWS ships (`environment`, `runtime_api`), and the SQS event
source mapping that polls the queue into them (`mapping`, `event`). docs/lambda.md says
what each models of Lambda, rule by rule.
"""
