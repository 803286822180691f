output "queue_url" {
  description = "URL of the main queue."
  value       = module.queue.queue_url
}

output "queue_arn" {
  description = "ARN of the main queue."
  value       = module.queue.queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue, null when dlq_enabled is false."
  value       = module.queue.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue, null when dlq_enabled is false."
  value       = module.queue.dlq_arn
}

output "image_uri" {
  description = "The consumer image the task definition runs (repository URL and tag)."
  value       = one(module.service[*].image)
}

output "ecr_repository_url" {
  description = "Where scripts/build_and_push.sh pushes the consumer image."
  value       = one(module.ecr[*].repository_url)
}

output "region" {
  description = "Region of the stack."
  value       = var.region
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = one(module.service[*].cluster_name)
}

output "service_name" {
  description = "ECS service name."
  value       = one(module.service[*].service_name)
}

output "log_group_name" {
  description = "CloudWatch log group of the consumer: the ECS containers, or the Lambda function."
  value       = local.ecs ? aws_cloudwatch_log_group.consumer[0].name : module.lambda[0].log_group_name
}

output "task_definition_family" {
  description = "Family of the consumer task definition."
  value       = one(module.service[*].task_definition_family)
}

output "subnet_ids" {
  description = "Public subnets the tasks run in."
  value       = local.ecs ? module.network[0].public_subnet_ids : []
}

output "security_group_id" {
  description = "Security group of the consumer tasks (egress only)."
  value       = one(module.service[*].security_group_id)
}

output "consumer_kind" {
  description = "What consumes the queue: ecs or lambda."
  value       = var.consumer_kind
}

output "function_name" {
  description = "The Lambda consumer's function name, null for ECS."
  value       = one(module.lambda[*].function_name)
}

output "mapping_uuid" {
  description = "UUID of the Lambda consumer's event source mapping, null for ECS."
  value       = one(module.lambda[*].mapping_uuid)
}
