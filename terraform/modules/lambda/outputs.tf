output "function_name" {
  description = "The function's name."
  value       = aws_lambda_function.consumer.function_name
}

output "function_arn" {
  description = "The function's ARN."
  value       = aws_lambda_function.consumer.arn
}

output "mapping_uuid" {
  description = "UUID of the event source mapping."
  value       = aws_lambda_event_source_mapping.queue.uuid
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.function.name
}

output "role_name" {
  description = "The function's role."
  value       = aws_iam_role.function.name
}
