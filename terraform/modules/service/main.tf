# The consumer as an ECS Fargate service: cluster, task definition, service, and a
# security group that lets the tasks out (HTTPS to SQS, ECR, CloudWatch) and nothing in.

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights is billed per metric; the lab samples queue depth and task counts itself.
  name = var.name

  setting {
    name  = "containerInsights"
    value = "disabled"
  }
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-consumer"
  description = "sqslab consumer tasks: egress HTTPS only, no ingress"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to the AWS APIs (SQS, ECR, S3 for image layers, CloudWatch Logs)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_ecs_task_definition" "consumer" {
  family                   = "${var.name}-consumer"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.task_cpu)
  memory                   = tostring(var.task_memory)
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "consumer"
    image     = var.image
    essential = true
    memory    = var.task_memory
    # consume.py writes nothing to disk.
    readonlyRootFilesystem = true
    environment = [
      for key in sort(keys(var.environment)) : { name = key, value = var.environment[key] }
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_name
        awslogs-region        = var.region
        awslogs-stream-prefix = "consumer"
      }
    }
  }])
}

resource "aws_ecs_service" "consumer" {
  #checkov:skip=CKV_AWS_333:No NAT gateway by design (cost); a public IP is the tasks' only way out. The security group admits no inbound traffic.
  name             = "${var.name}-consumer"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.consumer.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = true
  }
}
