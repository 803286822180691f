# The sqslab AWS stack: one SQS queue (+ DLQ) consumed by an ECS Fargate service, or
# (consumer_kind = "lambda") by a Lambda function behind an SQS event source mapping.
# Every module is local, so `terraform init` needs only the hashicorp/aws provider.

locals {
  ecs    = var.consumer_kind == "ecs"
  lambda = var.consumer_kind == "lambda"
}

module "network" {
  source = "./modules/network"
  count  = local.ecs ? 1 : 0

  name       = var.name
  cidr_block = var.vpc_cidr
}

module "queue" {
  source = "./modules/queue"

  name                          = var.name
  visibility_timeout_seconds    = var.visibility_timeout_seconds
  message_retention_seconds     = var.message_retention_seconds
  receive_wait_time_seconds     = var.receive_wait_time_seconds
  delay_seconds                 = var.delay_seconds
  dlq_enabled                   = var.dlq_enabled
  max_receive_count             = var.max_receive_count
  dlq_message_retention_seconds = var.dlq_message_retention_seconds
  fifo_queue                    = var.fifo_queue
  content_based_deduplication   = var.content_based_deduplication
  high_throughput               = var.high_throughput
}

module "ecr" {
  source = "./modules/ecr"
  count  = local.ecs ? 1 : 0

  repository_name   = var.ecr_repository_name
  create_repository = var.ecr_create_repository
}

resource "aws_cloudwatch_log_group" "consumer" {
  #checkov:skip=CKV_AWS_158:Consumer logs hold message ids and timings only; the default CloudWatch Logs encryption is enough for a lab and a KMS key costs $1/month.
  #checkov:skip=CKV_AWS_338:Lab logs are short-lived by design; retention is a variable (log_retention_days), default 7 days, to keep the bill small.
  count             = local.ecs ? 1 : 0
  name              = "/ecs/${var.name}/consumer"
  retention_in_days = var.log_retention_days
}

module "iam" {
  source = "./modules/iam"
  count  = local.ecs ? 1 : 0

  name               = var.name
  queue_arns         = compact([module.queue.queue_arn, module.queue.dlq_arn])
  log_group_arn      = aws_cloudwatch_log_group.consumer[0].arn
  ecr_repository_arn = module.ecr[0].repository_arn
  # A program image in an ECR repository of this account: pull from it too (nothing more).
  extra_repository_arns = local.program_ecr == null ? [] : [
    "arn:aws:ecr:${local.program_ecr[1]}:${local.program_ecr[0]}:repository/${local.program_ecr[2]}"
  ]
}

locals {
  # consumer.program.image, else the built-in consumer at image_tag.
  consumer_image = var.consumer_image != "" ? var.consumer_image : "${join("", module.ecr[*].repository_url)}:${var.image_tag}"
  program_ecr    = can(regex("^(\\d{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com/([^:@]+)", var.consumer_image)) ? regex("^(\\d{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com/([^:@]+)", var.consumer_image) : null
}

module "service" {
  source = "./modules/service"
  count  = local.ecs ? 1 : 0

  name               = var.name
  region             = var.region
  vpc_id             = module.network[0].vpc_id
  subnet_ids         = module.network[0].public_subnet_ids
  image              = local.consumer_image
  task_cpu           = var.task_cpu
  task_memory        = var.task_memory
  desired_count      = var.desired_count
  execution_role_arn = module.iam[0].execution_role_arn
  task_role_arn      = module.iam[0].task_role_arn
  log_group_name     = aws_cloudwatch_log_group.consumer[0].name

  # Terraform's values win over a knob of the same name (the variable's validation
  # already refuses those names).
  environment = merge(var.consumer_env, {
    SQSLAB_QUEUE_URL = module.queue.queue_url
    AWS_REGION       = var.region
  })
}

module "lambda" {
  source = "./modules/lambda"
  count  = local.lambda ? 1 : 0

  name                       = var.name
  queue_arn                  = module.queue.queue_arn
  package_path               = var.lambda_package_path
  source_code_hash           = var.lambda_source_code_hash
  entry_handler              = "sqslab_entry.handler"
  handler                    = var.lambda_handler
  runtime                    = var.lambda_runtime
  timeout                    = var.lambda_timeout
  memory                     = var.lambda_memory
  reserved_concurrency       = var.lambda_reserved_concurrency
  environment                = var.lambda_env
  enabled                    = var.event_source_enabled
  batch_size                 = var.event_source_batch_size
  batching_window_seconds    = var.event_source_batching_window_seconds
  report_batch_item_failures = var.event_source_report_batch_item_failures
  max_concurrency            = var.event_source_max_concurrency
  log_retention_days         = var.log_retention_days
}

# Stacks applied before consumer_kind keep their ECS resources where they are.
moved {
  from = module.network
  to   = module.network[0]
}

moved {
  from = module.ecr
  to   = module.ecr[0]
}

moved {
  from = aws_cloudwatch_log_group.consumer
  to   = aws_cloudwatch_log_group.consumer[0]
}

moved {
  from = module.iam
  to   = module.iam[0]
}

moved {
  from = module.service
  to   = module.service[0]
}
