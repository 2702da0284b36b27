output "api_url" {
  description = "Base URL of the API, without a trailing slash (POST <api_url>/orders/)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "execution_arn" {
  description = "Execution ARN of the HTTP API."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "access_log_group_name" {
  description = "Log group of the access logs."
  value       = aws_cloudwatch_log_group.access.name
}
