"""The aws target (`target`) and what it stands on: the project's Terraform stack
(`terraform`, `stack`), the ECS service (`service`), CloudWatch Logs (`logs`), client-side
SQS faults (`faults`) and the consumer image (`image`).
"""
