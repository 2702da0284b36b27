output "alb_dns_name" {
  description = "DNS name of the load balancer: ALB_DNS=$(terraform output -raw alb_dns_name)."
  value       = module.container.alb_dns_name
}

output "api_url" {
  description = "Base URL of the HTTP API (POST <api_url>/orders/)."
  value       = module.api_gateway.api_url
}

output "events_table_name" {
  description = "Name of the events table."
  value       = module.eventstore.events_table_name
}

output "orders_table_name" {
  description = "Name of the read table (aws dynamodb get-item --table-name ...)."
  value       = module.eventstore.orders_table_name
}

output "events_topic_arn" {
  description = "ARN of the topic that announces placed orders."
  value       = module.messaging.events_topic_arn
}

output "completed_topic_arn" {
  description = "ARN of the topic that announces completed, failed and cancelled orders."
  value       = module.messaging.completed_topic_arn
}

output "processing_queue_url" {
  description = "URL of the processing queue."
  value       = module.messaging.processing_queue_url
}

output "dlq_url" {
  description = "URL of the processing queue's dead-letter queue."
  value       = module.messaging.dlq_url
}

output "stream_failure_queue_url" {
  description = "URL of the queue that receives the stream mappings' failed batches."
  value       = module.messaging.stream_failure_queue_url
}

output "ecr_repository_url" {
  description = "Image repository to push the ledger image to."
  value       = module.container.ecr_repository_url
}

output "lambda_function_names" {
  description = "Lambda function names by role."
  value       = module.lambda.function_names
}

output "kms_key_arn" {
  description = "ARN of the environment's KMS key."
  value       = aws_kms_key.main.arn
}

output "ci_role_arns" {
  description = "Roles of the deploy workflow (repository variables AWS_PUBLISH_ROLE_ARN, AWS_PLAN_ROLE_ARN, AWS_APPLY_ROLE_ARN); null without github_repository."
  value = var.github_repository == null ? null : {
    publish = module.github_oidc[0].publish_role_arn
    plan    = module.github_oidc[0].plan_role_arn
    apply   = module.github_oidc[0].apply_role_arn
  }
}
