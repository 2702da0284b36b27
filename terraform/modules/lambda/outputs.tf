output "function_names" {
  description = "Function names by role: processor, projector, publisher and, when enabled, api."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "function_arns" {
  description = "Function ARNs by role."
  value       = { for k, f in aws_lambda_function.function : k => f.arn }
}

output "role_arns" {
  description = "Execution role ARNs by function role (one role per function)."
  value       = { for k, r in aws_iam_role.function : k => r.arn }
}

output "api_function_name" {
  description = "Name of the api function, or null when it is not enabled."
  value       = var.api_enabled ? aws_lambda_function.function["api"].function_name : null
}

output "api_invoke_arn" {
  description = "Invoke ARN of the api function (for API Gateway), or null when it is not enabled."
  value       = var.api_enabled ? aws_lambda_function.function["api"].invoke_arn : null
}

output "security_group_id" {
  description = "Security group of the functions."
  value       = aws_security_group.functions.id
}
