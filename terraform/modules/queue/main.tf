# The queue under test and its dead-letter queue.
#
# The main queue's redrive policy names the DLQ by ARN, so the DLQ is created first.
# Each aws_sqs_queue create waits about 25 s in the provider (it polls the queue's
# attributes until it has seen them six times in a row, five seconds apart), so the
# two queues take about 50 s on real AWS. See docs/aws.md.

locals {
  # SQS: a FIFO queue's name ends in .fifo, and a FIFO queue's DLQ is FIFO too.
  suffix   = var.fifo_queue ? ".fifo" : ""
  dlq_name = "${var.name}-dlq${local.suffix}"
  # Runs against a local emulator override this local (sqslab.targets.aws.terraform writes a
  # *_override.tf into its working copy) so that the main queue starts as soon as the
  # DLQ exists. On AWS the DLQ must exist before a redrive policy names it.
  dlq_arn = var.dlq_enabled ? aws_sqs_queue.dlq[0].arn : null
}

resource "aws_sqs_queue" "dlq" {
  count = var.dlq_enabled ? 1 : 0

  name                      = local.dlq_name
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
  fifo_queue                = var.fifo_queue ? true : null
}

resource "aws_sqs_queue" "main" {
  name                       = "${var.name}-queue${local.suffix}"
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  delay_seconds              = var.delay_seconds
  sqs_managed_sse_enabled    = true

  # FIFO settings, left unset on a standard queue.
  fifo_queue                  = var.fifo_queue ? true : null
  content_based_deduplication = var.fifo_queue ? var.content_based_deduplication : null
  deduplication_scope         = var.fifo_queue && var.high_throughput ? "messageGroup" : null
  fifo_throughput_limit       = var.fifo_queue && var.high_throughput ? "perMessageGroupId" : null

  redrive_policy = var.dlq_enabled ? jsonencode({
    deadLetterTargetArn = local.dlq_arn
    maxReceiveCount     = var.max_receive_count
  }) : null
}
