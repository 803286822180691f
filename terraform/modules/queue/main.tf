# The queue under test and its dead-letter queue.
#
# The main queue's redrive policy names the DLQ by ARN, so the DLQ is created first.
# Each aws_sqs_queue create waits about 25 s in the provider (it polls the queue's
# attributes until it has seen them six times in a row, five seconds apart), so the
# two queues take about 50 s on real AWS. See docs/aws.md.

locals {
  dlq_name = "${var.name}-dlq"
  # Runs against a local emulator override this local (sqslab.terraform writes a
  # *_override.tf into its working copy) so that the main queue starts as soon as the
  # DLQ exists. On AWS the DLQ must exist before a redrive policy names it.
  dlq_arn = var.dlq_enabled ? aws_sqs_queue.dlq[0].arn : null
}

resource "aws_sqs_queue" "dlq" {
  count = var.dlq_enabled ? 1 : 0

  name                      = local.dlq_name
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "main" {
  name                       = "${var.name}-queue"
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = var.receive_wait_time_seconds
  delay_seconds              = var.delay_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = var.dlq_enabled ? jsonencode({
    deadLetterTargetArn = local.dlq_arn
    maxReceiveCount     = var.max_receive_count
  }) : null
}
