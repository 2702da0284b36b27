output "api_url" {
  description = "Base URL of the API (POST <api_url>/orders/)."
  value       = aws_apigatewayv2_stage.default.invoke_url
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
