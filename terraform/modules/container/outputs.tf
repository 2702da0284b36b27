output "alb_dns_name" {
  description = "DNS name of the load balancer (the seed's ALB_DNS)."
  value       = aws_lb.this.dns_name
}

output "alb_arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.this.arn
}

output "alb_security_group_id" {
  description = "Security group of the load balancer."
  value       = aws_security_group.alb.id
}

output "listener_arn" {
  description = "ARN of the listener that forwards to the service (HTTPS when a certificate is set, else HTTP)."
  value       = local.https ? aws_lb_listener.https[0].arn : aws_lb_listener.http.arn
}

output "listener_port" {
  description = "Port of the listener in listener_arn."
  value       = local.https ? 443 : 80
}

output "ecr_repository_url" {
  description = "URL of the image repository to push to."
  value       = aws_ecr_repository.this.repository_url
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "log_group_name" {
  description = "Log group of the containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "ecr_repository_arn" {
  description = "ARN of the image repository (what a publisher may push to)."
  value       = aws_ecr_repository.this.arn
}
