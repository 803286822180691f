output "queue_url" {
  description = "URL of the main queue."
  value       = aws_sqs_queue.main.url
}

output "queue_arn" {
  description = "ARN of the main queue."
  value       = aws_sqs_queue.main.arn
}

output "dlq_url" {
  description = "URL of the DLQ, or null."
  value       = var.dlq_enabled ? aws_sqs_queue.dlq[0].url : null
}

output "dlq_arn" {
  description = "ARN of the DLQ, or null."
  value       = var.dlq_enabled ? aws_sqs_queue.dlq[0].arn : null
}
