variable "env" {
  type        = string
  description = "Environment prefix of every resource name; the code derives the same names from it (package resources)."
  default     = "dev"
}

variable "region" {
  type        = string
  description = "AWS region to deploy to (the seed used us-west-2)."
  default     = "us-west-2"
}

variable "image_tag" {
  type        = string
  description = "Tag of the ledger image pushed to the environment's ECR repository (the git commit)."
}

variable "api_backend" {
  type        = string
  description = "What API Gateway fronts: \"alb\" (the ECS service) or \"lambda\" (the api function)."
  default     = "alb"
}

variable "processor_timeout_seconds" {
  type        = number
  description = "Timeout of the processor Lambda; the processing queue's visibility timeout is six times this."
  default     = 30
}

variable "deletion_protection" {
  type        = bool
  description = "Deletion protection of the tables and the load balancer (set false before destroying the environment)."
  default     = true
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate for HTTPS on the load balancer; null serves plain HTTP as in the seed."
  default     = null
}

variable "alarm_actions" {
  type        = list(string)
  description = "More ARNs notified when an alarm fires, beside the operators' topic of the monitoring module."
  default     = []
}

variable "alarm_email" {
  type        = string
  description = "E-mail address subscribed to the operators' alarm topic (it must confirm), or null for none."
  default     = null
}

variable "jwt_issuer" {
  type        = string
  description = "Issuer URL of an optional JWT authorizer on the HTTP API."
  default     = null
}

variable "jwt_audience" {
  type        = list(string)
  description = "Audiences the JWT authorizer accepts."
  default     = []
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose workflows deploy this environment through OIDC roles; null creates no CI roles."
  default     = null
}

variable "github_environment" {
  type        = string
  description = "Protected GitHub environment (with a required reviewer) whose jobs alone may assume the apply role."
  default     = "dev"
}

variable "github_oidc_provider_arn" {
  type        = string
  description = "ARN of the account's GitHub OIDC provider when it exists already; null creates it with the CI roles."
  default     = null
}

variable "terraform_state_bucket" {
  type        = string
  description = "S3 bucket of the Terraform state CI reads and writes (required with github_repository)."
  default     = null
}

variable "orders_table" {
  type        = string
  description = "Read table the Lambdas and the ECS service use (LEDGER_ORDERS_TABLE), after a blue/green rebuild filled it (ledger projections rebuild --backend aws --into NAME); null uses the module's <env>-orders, which stays either way."
  default     = null

  validation {
    condition     = var.orders_table == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.orders_table))
    error_message = "orders_table must be a DynamoDB table name (3..255 letters, digits, '_', '-', '.')."
  }
}
