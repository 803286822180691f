# The consumer as a Lambda function behind an SQS event source mapping: the function, its
# log group, a role allowed only what the mapping and the function need, and the mapping.

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # Only this account's functions may assume the role (confused-deputy guard).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-function"
  description        = "The ${var.name} Lambda consumer and its event source mapping: the queue and the function's logs."
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Function logs hold message ids and timings only; the default CloudWatch Logs encryption is enough for a lab and a KMS key costs $1/month.
  #checkov:skip=CKV_AWS_338:Lab logs are short-lived by design; retention is a variable (log_retention_days), default 7 days, to keep the bill small.
  name              = "/aws/lambda/${var.name}-consumer"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "function" {
  # What the event source mapping does with the function's role (Lambda's documented
  # minimum for an SQS source): poll, delete what succeeded, read the queue's attributes.
  # ChangeMessageVisibility: for a handler that extends or ends a message's visibility.
  statement {
    sid = "ConsumeQueue"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "queue-and-logs"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_lambda_function" "consumer" {
  #checkov:skip=CKV_AWS_50:X-Ray is billed per trace; the lab records every invocation from the function's log.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is the scenario's (lambda.reserved_concurrency); unset, the function shares the account's pool as most do.
  #checkov:skip=CKV_AWS_116:A failed batch goes back to the queue and on to the queue's own DLQ (infra.dlq); a function DLQ is for asynchronous invocations, which an SQS mapping does not make.
  #checkov:skip=CKV_AWS_117:The function talks only to SQS and CloudWatch Logs; in a VPC it would need a NAT gateway or endpoints, which cost by the hour.
  #checkov:skip=CKV_AWS_173:The environment holds the scenario's settings, no secret (docs/aws.md); the default AWS-managed key encrypts it at rest.
  #checkov:skip=CKV_AWS_272:The package is built by sqslab from your folder on each run; code signing needs a signing profile the lab does not have.
  function_name    = "${var.name}-consumer"
  description      = "sqslab consumer ${var.name}: ${var.handler} behind sqslab's entry"
  role             = aws_iam_role.function.arn
  handler          = var.entry_handler
  runtime          = var.runtime
  filename         = var.package_path
  source_code_hash = var.source_code_hash
  timeout          = var.timeout
  memory_size      = var.memory

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = merge(var.environment, {
      SQSLAB_HANDLER                    = var.handler
      SQSLAB_REPORT_BATCH_ITEM_FAILURES = tostring(var.report_batch_item_failures)
    })
  }

  # The log group exists (with its retention) before the first invocation could create it.
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "queue" {
  event_source_arn                   = var.queue_arn
  function_name                      = aws_lambda_function.consumer.arn
  enabled                            = var.enabled
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  function_response_types            = var.report_batch_item_failures ? ["ReportBatchItemFailures"] : []

  dynamic "scaling_config" {
    for_each = var.max_concurrency > 0 ? [var.max_concurrency] : []
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  # The role may read the queue before the mapping polls it.
  depends_on = [aws_iam_role_policy.function]
}
