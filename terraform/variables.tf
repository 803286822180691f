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
  description = "Tag of the consumer image in the ECR repository (the repository's tags are immutable); ECS consumers only."
  type        = string
  default     = ""

  validation {
    condition     = var.consumer_kind != "ecs" || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
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

# -- the Lambda consumer (consumer_kind = "lambda"; sqslab/consumers/lambda_function.py) -----

variable "consumer_kind" {
  description = "What consumes the queue: ecs (an ECS Fargate service) or lambda (a function behind an SQS event source mapping)."
  type        = string
  default     = "ecs"

  validation {
    condition     = contains(["ecs", "lambda"], var.consumer_kind)
    error_message = "consumer_kind must be ecs or lambda."
  }
}

variable "lambda_package_path" {
  description = "The function's deployment package, a zip sqslab builds from consumer.lambda.code."
  type        = string
  default     = ""

  validation {
    condition     = var.consumer_kind != "lambda" || endswith(var.lambda_package_path, ".zip")
    error_message = "lambda_package_path must name the function's zip."
  }
}

variable "lambda_source_code_hash" {
  description = "Base64 SHA-256 of the package (a new hash uploads the code again)."
  type        = string
  default     = ""
}

variable "lambda_handler" {
  description = "Your handler, module.function (sqslab's entry in front of it calls it)."
  type        = string
  default     = ""

  validation {
    condition     = var.consumer_kind != "lambda" || can(regex("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)+$", var.lambda_handler))
    error_message = "lambda_handler must be module.function."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime of the function."
  type        = string
  default     = "python3.11"

  validation {
    condition     = contains(["python3.9", "python3.10", "python3.11", "python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be a Python runtime: python3.9 to python3.13."
  }
}

variable "lambda_timeout" {
  description = "Function timeout, seconds."
  type        = number
  default     = 3

  validation {
    condition     = var.lambda_timeout >= 1 && var.lambda_timeout <= 900 && floor(var.lambda_timeout) == var.lambda_timeout
    error_message = "lambda_timeout must be a whole number of seconds from 1 to 900."
  }
}

variable "lambda_memory" {
  description = "Function memory, MB."
  type        = number
  default     = 128

  validation {
    condition     = var.lambda_memory >= 128 && var.lambda_memory <= 10240 && floor(var.lambda_memory) == var.lambda_memory
    error_message = "lambda_memory must be a whole number of MB from 128 to 10240."
  }
}

variable "lambda_reserved_concurrency" {
  description = "The function's reserved concurrency; -1 for none (the account's unreserved pool)."
  type        = number
  default     = -1

  validation {
    condition     = var.lambda_reserved_concurrency >= -1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency
    error_message = "lambda_reserved_concurrency must be -1 (none) or a whole number from 0."
  }
}

variable "lambda_env" {
  description = "The function's environment (scenario lambda.env). SQSLAB_HANDLER and SQSLAB_REPORT_BATCH_ITEM_FAILURES are set by Terraform."
  type        = map(string)
  default     = {}

  validation {
    # Lambda reserves these; sqslab's entry reads the two SQSLAB_ ones.
    condition     = length(setintersection(keys(var.lambda_env), ["SQSLAB_HANDLER", "SQSLAB_REPORT_BATCH_ITEM_FAILURES", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER"])) == 0
    error_message = "lambda_env must not set SQSLAB_HANDLER, SQSLAB_REPORT_BATCH_ITEM_FAILURES or variables Lambda reserves."
  }
}

variable "event_source_enabled" {
  description = "Whether the event source mapping polls the queue."
  type        = bool
  default     = true
}

variable "event_source_batch_size" {
  description = "Records per batch the mapping hands the function."
  type        = number
  default     = 10

  validation {
    condition     = var.event_source_batch_size >= 1 && var.event_source_batch_size <= 10000 && floor(var.event_source_batch_size) == var.event_source_batch_size
    error_message = "event_source_batch_size must be a whole number from 1 to 10000."
  }
}

variable "event_source_batching_window_seconds" {
  description = "How long the mapping gathers records before it invokes, seconds."
  type        = number
  default     = 0

  validation {
    condition     = var.event_source_batching_window_seconds >= 0 && var.event_source_batching_window_seconds <= 300 && floor(var.event_source_batching_window_seconds) == var.event_source_batching_window_seconds
    error_message = "event_source_batching_window_seconds must be a whole number from 0 to 300."
  }
}

variable "event_source_report_batch_item_failures" {
  description = "The mapping reads partial batch responses (ReportBatchItemFailures)."
  type        = bool
  default     = false
}

variable "event_source_max_concurrency" {
  description = "The mapping's maximum concurrency (scaling_config); 0 for none."
  type        = number
  default     = 0

  validation {
    condition     = var.event_source_max_concurrency == 0 || (var.event_source_max_concurrency >= 2 && var.event_source_max_concurrency <= 1000 && floor(var.event_source_max_concurrency) == var.event_source_max_concurrency)
    error_message = "event_source_max_concurrency must be 0 (none) or a whole number from 2 to 1000."
  }
}
