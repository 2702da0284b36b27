# An HTTP API in front of the order API: either the api Lambda or the load
# balancer (through a VPC link), with access logs, throttling and an optional
# JWT authorizer.

locals {
  name    = "${var.env}-order-api"
  to_alb  = var.backend == "alb"
  use_jwt = var.jwt_issuer != null
}

resource "aws_apigatewayv2_api" "this" {
  name          = local.name
  protocol_type = "HTTP"
  description   = "orderledger REST API"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      ip               = "$context.identity.sourceIp"
      requestTime      = "$context.requestTime"
      httpMethod       = "$context.httpMethod"
      path             = "$context.path"
      routeKey         = "$context.routeKey"
      status           = "$context.status"
      responseLength   = "$context.responseLength"
      latency          = "$context.responseLatency"
      integrationError = "$context.integrationErrorMessage"
    })
  }
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = local.use_jwt ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${local.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_route" "default" {
  #checkov:skip=CKV_AWS_309:The JWT authorizer is optional (jwt_issuer); without it the application enforces LEDGER_API_TOKEN bearer tokens.
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = "$default"
  target             = "integrations/${local.to_alb ? aws_apigatewayv2_integration.alb[0].id : aws_apigatewayv2_integration.lambda[0].id}"
  authorization_type = local.use_jwt ? "JWT" : "NONE"
  authorizer_id      = local.use_jwt ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

# Backend "lambda": the api function, through the payload format 2.0 that the
# function's httpadapter.NewV2 expects.
resource "aws_apigatewayv2_integration" "lambda" {
  count = local.to_alb ? 0 : 1

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.lambda_invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_lambda_permission" "api" {
  count = local.to_alb ? 0 : 1

  statement_id  = "AllowHTTPAPI"
  action        = "lambda:InvokeFunction"
  function_name = var.lambda_function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

# Backend "alb": a VPC link to the load balancer's listener.
resource "aws_security_group" "vpc_link" {
  count = local.to_alb ? 1 : 0

  name        = "${local.name}-vpc-link"
  description = "HTTP API VPC link: out to the load balancer only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "vpc_link_alb" {
  count = local.to_alb ? 1 : 0

  security_group_id            = aws_security_group.vpc_link[0].id
  description                  = "To the load balancer listener"
  ip_protocol                  = "tcp"
  from_port                    = var.alb_listener_port
  to_port                      = var.alb_listener_port
  referenced_security_group_id = var.alb_security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_from_vpc_link" {
  count = local.to_alb ? 1 : 0

  security_group_id            = var.alb_security_group_id
  description                  = "From the HTTP API VPC link"
  ip_protocol                  = "tcp"
  from_port                    = var.alb_listener_port
  to_port                      = var.alb_listener_port
  referenced_security_group_id = aws_security_group.vpc_link[0].id
}

resource "aws_apigatewayv2_vpc_link" "this" {
  count = local.to_alb ? 1 : 0

  name               = local.name
  subnet_ids         = var.vpc_link_subnet_ids
  security_group_ids = [aws_security_group.vpc_link[0].id]
}

resource "aws_apigatewayv2_integration" "alb" {
  count = local.to_alb ? 1 : 0

  api_id               = aws_apigatewayv2_api.this.id
  integration_type     = "HTTP_PROXY"
  integration_method   = "ANY"
  integration_uri      = var.alb_listener_arn
  connection_type      = "VPC_LINK"
  connection_id        = aws_apigatewayv2_vpc_link.this[0].id
  timeout_milliseconds = 29000
}
