# One least-privilege policy per function. Actions are always listed in full
# (no wildcards); resources are the ARNs of this environment, except for the
# read-only actions AWS does not scope to a resource (ec2:Describe*,
# dynamodb:ListStreams, X-Ray telemetry).

# What every function needs: its own log group, VPC networking, X-Ray and the
# KMS key.
data "aws_iam_policy_document" "common" {
  for_each = local.all_functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${each.value.name}:*"]
  }

  statement {
    sid       = "CreateNetworkInterface"
    actions   = ["ec2:CreateNetworkInterface"]
    resources = concat([local.network_interface_arn, local.security_group_arn], local.subnet_arns)
  }

  statement {
    sid       = "ManageNetworkInterfaces"
    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = [local.network_interface_arn]
  }

  statement {
    sid       = "DescribeNetwork"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

# Reading the events table's stream, shared by the projector and the publisher.
data "aws_iam_policy_document" "stream_reader" {
  statement {
    sid       = "ReadStream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    resources = [var.events_stream_arn]
  }

  statement {
    sid       = "ListStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["*"]
  }

  statement {
    sid       = "StreamFailures"
    actions   = ["sqs:SendMessage"]
    resources = [var.stream_failure_queue_arn]
  }
}

data "aws_iam_policy_document" "processor" {
  source_policy_documents = [data.aws_iam_policy_document.common["processor"].json]

  statement {
    sid       = "ConsumeProcessingQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [var.processing_queue_arn]
  }

  statement {
    sid       = "AppendEvents"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    resources = [var.events_table_arn]
  }
}

data "aws_iam_policy_document" "projector" {
  source_policy_documents = [
    data.aws_iam_policy_document.common["projector"].json,
    data.aws_iam_policy_document.stream_reader.json,
  ]

  statement {
    sid       = "WriteReadTable"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [var.orders_table_arn]
  }

  statement {
    sid       = "ReadEvents"
    actions   = ["dynamodb:Query"]
    resources = [var.events_table_arn]
  }
}

data "aws_iam_policy_document" "publisher" {
  source_policy_documents = [
    data.aws_iam_policy_document.common["publisher"].json,
    data.aws_iam_policy_document.stream_reader.json,
  ]

  statement {
    sid       = "Publish"
    actions   = ["sns:Publish"]
    resources = [var.events_topic_arn, var.completed_topic_arn]
  }
}

data "aws_iam_policy_document" "api" {
  source_policy_documents = [data.aws_iam_policy_document.common["api"].json]

  statement {
    sid       = "AppendEvents"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    resources = [var.events_table_arn]
  }

  statement {
    sid       = "ReadOrders"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = [var.orders_table_arn, "${var.orders_table_arn}/index/*"]
  }
}
