variable "name" {
  description = "Prefix for the cluster, service, task family and security group."
  type        = string
}

variable "region" {
  description = "Region, for the awslogs driver."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the security group."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the tasks run in."
  type        = list(string)
}

variable "image" {
  description = "Consumer image: repository URL and tag."
  type        = string
}

variable "task_cpu" {
  description = "Fargate task CPU units."
  type        = number
}

variable "task_memory" {
  description = "Fargate task memory, MiB (also the container's hard limit)."
  type        = number
}

variable "desired_count" {
  description = "Tasks the service keeps running."
  type        = number
}

variable "execution_role_arn" {
  description = "Role the ECS agent uses to pull the image and write logs."
  type        = string
}

variable "task_role_arn" {
  description = "Role the consumer runs as."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch log group for the awslogs driver."
  type        = string
}

variable "environment" {
  description = "Container environment: the consumer knobs plus SQSLAB_QUEUE_URL and AWS_REGION."
  type        = map(string)
}
