# The order functions: processor (SQS -> saga), projector (stream -> read
# table), publisher (stream -> SNS) and, optionally, api (HTTP API -> REST API).
# Each function has its own least-privilege role.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  all_functions = {
    processor = { name = "${var.env}-order-processor", timeout = var.processor_timeout_seconds }
    projector = { name = "${var.env}-order-projector", timeout = 60 }
    publisher = { name = "${var.env}-order-publisher", timeout = 60 }
    api       = { name = "${var.env}-order-api", timeout = 29 }
  }
  functions = { for k, f in local.all_functions : k => f if k != "api" || var.api_enabled }

  policies = {
    processor = data.aws_iam_policy_document.processor.json
    projector = data.aws_iam_policy_document.projector.json
    publisher = data.aws_iam_policy_document.publisher.json
    api       = data.aws_iam_policy_document.api.json
  }

  network_interface_arn = "arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:network-interface/*"
  subnet_arns           = [for id in var.subnet_ids : "arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:subnet/${id}"]
  security_group_arn    = "arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:security-group/${aws_security_group.functions.id}"
}

resource "aws_security_group" "functions" {
  name        = "${var.env}-order-functions"
  description = "Order functions: HTTPS out to the VPC endpoints only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "functions_endpoints" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to the interface endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "functions_dynamodb" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to DynamoDB through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.dynamodb_prefix_list_id
}

data "aws_iam_policy_document" "assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = each.value.name
  description        = "Execution role of the ${each.value.name} function"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${each.value.name}-policy"
  role   = aws_iam_role.function[each.key].id
  policy = local.policies[each.key]
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_lambda_function" "function" {
  for_each = local.functions
  #checkov:skip=CKV_AWS_116:Invoked synchronously (event source mappings, API Gateway), never asynchronously; failures go to the processing queue's DLQ and the stream mappings' on-failure queue.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded per event source (SQS maximum_concurrency, one batch per stream shard); reserving concurrency fails on accounts with the default quota.
  #checkov:skip=CKV_AWS_272:The zips are built by `make lambdas` and uploaded directly; no AWS Signer profile is part of this deployment.

  function_name    = each.value.name
  description      = "orderledger ${each.key}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  filename         = "${var.package_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${var.package_dir}/${each.key}.zip")
  timeout          = each.value.timeout
  memory_size      = var.memory_size
  kms_key_arn      = var.kms_key_arn

  environment {
    variables = merge({
      LEDGER_ENV     = var.env
      LEDGER_BACKEND = "aws"
    }, var.environment)
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.functions.id]
  }

  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "processor" {
  function_name                      = aws_lambda_function.function["processor"].arn
  event_source_arn                   = var.processing_queue_arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = var.processor_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.processor_maximum_concurrency
  }
}

resource "aws_lambda_event_source_mapping" "projector" {
  function_name                      = aws_lambda_function.function["projector"].arn
  event_source_arn                   = var.events_stream_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.projector_batch_size
  maximum_batching_window_in_seconds = var.projector_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.stream_maximum_retry_attempts

  destination_config {
    on_failure {
      destination_arn = var.stream_failure_queue_arn
    }
  }
}

resource "aws_lambda_event_source_mapping" "publisher" {
  function_name                  = aws_lambda_function.function["publisher"].arn
  event_source_arn               = var.events_stream_arn
  starting_position              = "TRIM_HORIZON"
  batch_size                     = var.stream_batch_size
  function_response_types        = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = var.stream_maximum_retry_attempts

  destination_config {
    on_failure {
      destination_arn = var.stream_failure_queue_arn
    }
  }
}
