variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "cidr_block" {
  type        = string
  description = "IPv4 CIDR block of the VPC; subnets are carved from it as /24s."
  default     = "10.20.0.0/16"
}

variable "availability_zone_letters" {
  type        = list(string)
  description = "Availability zones to spread the subnets over, as letters appended to the region (us-west-2 + a); pinned so the set never grows by itself."
  default     = ["a", "b"]

  validation {
    condition     = length(var.availability_zone_letters) >= 2 && length(var.availability_zone_letters) <= 3
    error_message = "Use 2 or 3 availability zones (the load balancer needs at least 2)."
  }
}

variable "interface_endpoints" {
  type        = list(string)
  description = "AWS services reached through interface endpoints from the private subnets."
  default     = ["sqs", "sns", "logs", "ecr.api", "ecr.dkr"]
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key that encrypts the flow log group."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the VPC flow log group, in days."
  default     = 365
}
