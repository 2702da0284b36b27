variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "backend" {
  type        = string
  description = "What the HTTP API forwards to: \"lambda\" (the api function) or \"alb\" (the ECS service, through a VPC link)."
  default     = "alb"

  validation {
    condition     = contains(["lambda", "alb"], var.backend)
    error_message = "The backend must be \"lambda\" or \"alb\"."
  }
}

variable "lambda_function_name" {
  type        = string
  description = "Name of the api function (backend \"lambda\")."
  default     = null
}

variable "lambda_invoke_arn" {
  type        = string
  description = "Invoke ARN of the api function (backend \"lambda\")."
  default     = null
}

variable "alb_listener_arn" {
  type        = string
  description = "ARN of the load balancer listener to forward to (backend \"alb\")."
  default     = null
}

variable "alb_listener_port" {
  type        = number
  description = "Port of that listener (backend \"alb\")."
  default     = 80
}

variable "alb_security_group_id" {
  type        = string
  description = "Security group of the load balancer; the VPC link is allowed in (backend \"alb\")."
  default     = null
}

variable "vpc_id" {
  type        = string
  description = "VPC of the load balancer (backend \"alb\")."
  default     = null
}

variable "vpc_link_subnet_ids" {
  type        = list(string)
  description = "Private subnets of the VPC link (backend \"alb\")."
  default     = []
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key that encrypts the access log group."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the access log group, in days."
  default     = 365
}

variable "throttling_rate_limit" {
  type        = number
  description = "Steady-state requests per second the stage admits."
  default     = 100
}

variable "throttling_burst_limit" {
  type        = number
  description = "Burst of requests the stage admits."
  default     = 200
}

variable "jwt_issuer" {
  type        = string
  description = "Issuer URL of a JWT authorizer; null leaves the routes without an API Gateway authorizer (the application's LEDGER_API_TOKEN still applies)."
  default     = null
}

variable "jwt_audience" {
  type        = list(string)
  description = "Audiences the JWT authorizer accepts (with jwt_issuer)."
  default     = []
}
