output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.consumer.name
}

output "task_definition_family" {
  description = "Task definition family."
  value       = aws_ecs_task_definition.consumer.family
}

output "image" {
  description = "Image the task definition runs."
  value       = var.image
}

output "security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.tasks.id
}
