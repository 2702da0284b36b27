variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "vpc_id" {
  type        = string
  description = "VPC the load balancer and the tasks run in."
}

variable "vpc_cidr_block" {
  type        = string
  description = "CIDR block of the VPC: the tasks may open HTTPS connections to the interface endpoints in it."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Subnets of the load balancer (at least two availability zones)."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Subnets of the tasks (no public IPs)."
}

variable "dynamodb_prefix_list_id" {
  type        = string
  description = "Prefix list of the DynamoDB gateway endpoint, allowed as an HTTPS egress destination."
}

variable "s3_prefix_list_id" {
  type        = string
  description = "Prefix list of the S3 gateway endpoint, allowed as an HTTPS egress destination (ECR layers)."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key for the image repository and the log group."
}

variable "events_table_arn" {
  type        = string
  description = "ARN of the events table, which the API appends to."
}

variable "orders_table_arn" {
  type        = string
  description = "ARN of the read table, which the API reads."
}

variable "image_tag" {
  type        = string
  description = "Tag of the image in this module's ECR repository (tags are immutable; use the git commit)."
}

variable "cpu_architecture" {
  type        = string
  description = "CPU architecture the image was built for: ARM64 or X86_64."
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.cpu_architecture)
    error_message = "The CPU architecture must be ARM64 or X86_64."
  }
}

variable "cpu" {
  type        = number
  description = "Task CPU units (256 = 0.25 vCPU)."
  default     = 256
}

variable "memory" {
  type        = number
  description = "Task memory in MiB."
  default     = 512
}

variable "desired_count" {
  type        = number
  description = "Number of tasks the service keeps running."
  default     = 1
}

variable "internal" {
  type        = bool
  description = "Whether the load balancer is internal; the seed's curl needs an internet-facing one."
  default     = false
}

variable "ingress_cidr_blocks" {
  type        = list(string)
  description = "IPv4 ranges allowed to reach the load balancer."
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate for an HTTPS listener; when set, port 80 redirects to HTTPS. When null, port 80 serves plain HTTP (the seed's curl)."
  default     = null
}

variable "access_logs_bucket" {
  type        = string
  description = "Existing S3 bucket for the load balancer's access logs; null disables them."
  default     = null
}

variable "deletion_protection" {
  type        = bool
  description = "Whether AWS refuses to delete the load balancer (and Terraform keeps an image repository that still holds images)."
  default     = true
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the service's log group, in days."
  default     = 365
}

variable "environment" {
  type        = map(string)
  description = "Extra environment variables of the container (LEDGER_* settings)."
  default     = {}
}
