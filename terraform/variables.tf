# The contract with sqslab's tfvars (sqslab.targets.aws.terraform.stack_variables): each scenario
# setting that has a variable here is a row of sqslab/scenario/settings.py, which gives its name,
# default and limits; tests/test_terraform.py holds the two to each other.

variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like us-west-1."
  }
}

variable "name" {
  description = "Prefix for every named resource, derived from the scenario name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be 2-40 characters of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "visibility_timeout_seconds" {
  description = "Queue visibility timeout, seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "visibility_timeout_seconds must be a whole number from 0 to 43200."
  }
}

variable "message_retention_seconds" {
  description = "How long the queue keeps a message, seconds."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600 && floor(var.message_retention_seconds) == var.message_retention_seconds
    error_message = "message_retention_seconds must be a whole number from 60 to 1209600 (14 days)."
  }
}

variable "receive_wait_time_seconds" {
  description = "Queue default long-poll wait, seconds."
  type        = number
  default     = 0

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20 && floor(var.receive_wait_time_seconds) == var.receive_wait_time_seconds
    error_message = "receive_wait_time_seconds must be a whole number from 0 to 20."
  }
}

variable "delay_seconds" {
  description = "Queue delivery delay for every message, seconds."
  type        = number
  default     = 0

  validation {
    condition     = var.delay_seconds >= 0 && var.delay_seconds <= 900 && floor(var.delay_seconds) == var.delay_seconds
    error_message = "delay_seconds must be a whole number from 0 to 900."
  }
}

variable "fifo_queue" {
  description = "Make the queue and its DLQ FIFO queues (names end in .fifo)."
  type        = bool
  default     = false
}

variable "content_based_deduplication" {
  description = "FIFO only: SQS deduplicates by a hash of the body instead of the producer's deduplication id."
  type        = bool
  default     = false

  validation {
    condition     = !var.content_based_deduplication || var.fifo_queue
    error_message = "content_based_deduplication is for FIFO queues: set fifo_queue = true."
  }
}

variable "high_throughput" {
  description = "FIFO only: DeduplicationScope messageGroup and FifoThroughputLimit perMessageGroupId."
  type        = bool
  default     = false

  validation {
    condition     = !var.high_throughput || var.fifo_queue
    error_message = "high_throughput is for FIFO queues: set fifo_queue = true."
  }
}

variable "dlq_enabled" {
  description = "Create a dead-letter queue and a redrive policy on the main queue."
  type        = bool
  default     = true
}

variable "max_receive_count" {
  description = "Receives after which a message moves to the DLQ."
  type        = number
  default     = 3

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long the DLQ keeps a message, seconds."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600 && floor(var.dlq_message_retention_seconds) == var.dlq_message_retention_seconds
    error_message = "dlq_message_retention_seconds must be a whole number from 60 to 1209600 (14 days)."
  }
}

variable "desired_count" {
  description = "Number of consumer tasks the ECS service keeps running."
  type        = number
  default     = 1

  validation {
    condition     = var.desired_count >= 0 && var.desired_count <= 100 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number from 0 to 100."
  }
}

variable "task_cpu" {
  description = "Fargate task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be a Fargate CPU value: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Fargate task memory, MiB; must be a valid combination with task_cpu."
  type        = number
  default     = 512

  # The Fargate task size table (Amazon ECS developer guide, "Task CPU and memory").
  validation {
    condition = (
      var.task_cpu == 256 ? contains([512, 1024, 2048], var.task_memory) :
      var.task_cpu == 512 ? contains(range(1024, 4097, 1024), var.task_memory) :
      var.task_cpu == 1024 ? contains(range(2048, 8193, 1024), var.task_memory) :
      var.task_cpu == 2048 ? contains(range(4096, 16385, 1024), var.task_memory) :
      var.task_cpu == 4096 ? contains(range(8192, 30721, 1024), var.task_memory) :
      var.task_cpu == 8192 ? contains(range(16384, 61441, 4096), var.task_memory) :
      var.task_cpu == 16384 ? contains(range(32768, 122881, 8192), var.task_memory) :
      false
    )
    error_message = "task_memory is not a valid Fargate size for this task_cpu (256: 512/1024/2048; 512: 1024-4096; 1024: 2048-8192; 2048: 4096-16384 in 1024 steps; 4096: 8192-30720 in 1024 steps; 8192: 16384-61440 in 4096 steps; 16384: 32768-122880 in 8192 steps)."
  }
}

variable "image_tag" {
  description = "Tag of the consumer image in the ECR repository (the repository's tags are immutable)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid Docker tag (letters, digits, _ . -; at most 128 characters)."
  }
}

variable "consumer_image" {
  description = "Your own consumer program's image (scenario consumer.program.image); empty: the built-in consumer from the ECR repository at image_tag."
  type        = string
  default     = ""

  validation {
    condition     = var.consumer_image == "" || can(regex("^[^\\s]{1,255}$", var.consumer_image))
    error_message = "consumer_image must be an image reference without spaces (at most 255 characters)."
  }
}

variable "consumer_env" {
  description = "Consumer knobs passed as container environment (docs/contracts.md). SQSLAB_QUEUE_URL and AWS_REGION are set by Terraform."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.consumer_env) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "consumer_env keys must be upper-case environment variable names."
  }

  validation {
    # Terraform owns these; AWS_ENDPOINT_URL must stay unset on AWS (docs/contracts.md).
    condition     = length(setintersection(keys(var.consumer_env), ["SQSLAB_QUEUE_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])) == 0
    error_message = "consumer_env must not set SQSLAB_QUEUE_URL, AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL or credentials."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for the consumer log group, days."
  type        = number
  default     = 7

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "ecr_repository_name" {
  description = "ECR repository holding the consumer image."
  type        = string
  default     = "sqs-demo/consumer"

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.ecr_repository_name)) && length(var.ecr_repository_name) >= 2 && length(var.ecr_repository_name) <= 256
    error_message = "ecr_repository_name must be a valid ECR repository name (lowercase, digits, . _ - and / separators)."
  }
}

variable "ecr_create_repository" {
  description = "Create the ECR repository in this stack; false to use an existing one (shared by several scenarios)."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR of the small VPC; split into two public subnets."
  type        = string
  default     = "10.42.0.0/24"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 26
    error_message = "vpc_cidr must be an IPv4 CIDR of /26 or larger."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}
