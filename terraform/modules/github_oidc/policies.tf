# What each role may do. Every action is named (no wildcards); resources are
# the environment's own (<env>-* names, this account and region) wherever the
# service can scope an action, and "*" only for actions that take no resource
# (Describe and List calls, ecr:GetAuthorizationToken, kms:CreateKey,
# ecs:RegisterTaskDefinition and the like).

locals {
  arn = {
    dynamodb  = "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${var.env}-*"
    sqs       = "arn:${local.partition}:sqs:${local.region}:${local.account}:${var.env}-*"
    sns       = "arn:${local.partition}:sns:${local.region}:${local.account}:${var.env}-*"
    lambda    = "arn:${local.partition}:lambda:${local.region}:${local.account}:function:${var.env}-*"
    mapping   = "arn:${local.partition}:lambda:${local.region}:${local.account}:event-source-mapping:*"
    logs      = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"
    alarms    = "arn:${local.partition}:cloudwatch:${local.region}:${local.account}:alarm:${var.env}-*"
    kms_keys  = "arn:${local.partition}:kms:${local.region}:${local.account}:key/*"
    kms_alias = "arn:${local.partition}:kms:${local.region}:${local.account}:alias/${var.env}-*"
    ecr       = "arn:${local.partition}:ecr:${local.region}:${local.account}:repository/${var.env}-*"
    ecs       = "arn:${local.partition}:ecs:${local.region}:${local.account}:*/${var.env}-*"
    elb       = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account}:*/${var.env}-*"
    ec2       = "arn:${local.partition}:ec2:${local.region}:${local.account}:*"
    apigw     = "arn:${local.partition}:apigateway:${local.region}::/*"
    roles     = "arn:${local.partition}:iam::${local.account}:role/${var.env}-*"
    ci_roles  = "arn:${local.partition}:iam::${local.account}:role/${local.role_prefix}-*"
    ci_policy = "arn:${local.partition}:iam::${local.account}:policy/${local.role_prefix}-*"
    oidc      = "arn:${local.partition}:iam::${local.account}:oidc-provider/${local.oidc_host}"
    linked    = "arn:${local.partition}:iam::${local.account}:role/aws-service-role/*"
    bucket    = "arn:${local.partition}:s3:::${var.terraform_state_bucket}"
    state     = "arn:${local.partition}:s3:::${var.terraform_state_bucket}/${var.terraform_state_key}"
    lock      = "arn:${local.partition}:s3:::${var.terraform_state_bucket}/${var.terraform_state_key}.tflock"
  }

  # Reads Terraform makes to refresh the environment's resources, by the
  # resource they can be scoped to.
  read_scoped = {
    dynamodb  = ["dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource"]
    sqs       = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueueTags"]
    sns       = ["sns:GetSubscriptionAttributes", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource"]
    lambda    = ["lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionConcurrency", "lambda:GetPolicy", "lambda:ListTags", "lambda:ListVersionsByFunction"]
    mapping   = ["lambda:GetEventSourceMapping", "lambda:ListTags"]
    logs      = ["logs:ListTagsForResource", "logs:ListTagsLogGroup"]
    alarms    = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
    ec2       = ["ec2:DescribeVpcAttribute"]
    kms_keys  = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    ecr       = ["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:ListTagsForResource"]
    ecs       = ["ecs:DescribeClusters", "ecs:DescribeServices", "ecs:ListTagsForResource"]
    apigw     = ["apigateway:GET"]
    roles     = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"]
    ci_roles  = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"]
    ci_policy = ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions"]
    oidc      = ["iam:GetOpenIDConnectProvider"]
  }

  # Reads that take no resource.
  read_unscoped = [
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeFlowLogs",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeManagedPrefixLists",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribePrefixLists",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVpcEndpointServices",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
    "ecs:DescribeTaskDefinition",
    "elasticloadbalancing:DescribeCapacityReservation",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "kms:ListAliases",
    "lambda:ListEventSourceMappings",
    "logs:DescribeLogGroups",
  ]

  # Changes terraform apply makes to the environment's resources, by the
  # resource they can be scoped to.
  write_scoped = {
    dynamodb  = ["dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:TagResource", "dynamodb:UntagResource", "dynamodb:UpdateContinuousBackups", "dynamodb:UpdateTable", "dynamodb:UpdateTimeToLive"]
    sqs       = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"]
    sns       = ["sns:CreateTopic", "sns:DeleteTopic", "sns:SetSubscriptionAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:TagResource", "sns:Unsubscribe", "sns:UntagResource"]
    lambda    = ["lambda:AddPermission", "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:DeleteFunctionConcurrency", "lambda:PutFunctionConcurrency", "lambda:RemovePermission", "lambda:TagResource", "lambda:UntagResource", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration"]
    mapping   = ["lambda:DeleteEventSourceMapping", "lambda:TagResource", "lambda:UntagResource", "lambda:UpdateEventSourceMapping"]
    logs      = ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DeleteRetentionPolicy", "logs:DisassociateKmsKey", "logs:PutRetentionPolicy", "logs:TagResource", "logs:UntagResource"]
    alarms    = ["cloudwatch:DeleteAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:UntagResource"]
    kms_keys  = ["kms:CreateGrant", "kms:Decrypt", "kms:EnableKeyRotation", "kms:Encrypt", "kms:GenerateDataKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription"]
    kms_alias = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    ecr       = ["ecr:CreateRepository", "ecr:DeleteLifecyclePolicy", "ecr:DeleteRepository", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:PutLifecyclePolicy", "ecr:TagResource", "ecr:UntagResource"]
    ecs       = ["ecs:CreateCluster", "ecs:CreateService", "ecs:DeleteCluster", "ecs:DeleteService", "ecs:PutClusterCapacityProviders", "ecs:TagResource", "ecs:UntagResource", "ecs:UpdateCluster", "ecs:UpdateClusterSettings", "ecs:UpdateService"]
    elb = [
      "elasticloadbalancing:AddTags", "elasticloadbalancing:CreateListener", "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup",
      "elasticloadbalancing:DeleteListener", "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyListenerAttributes",
      "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:RemoveTags", "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
    ]
    ec2 = [
      "ec2:AssociateRouteTable", "ec2:AttachInternetGateway", "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
      "ec2:CreateFlowLogs", "ec2:CreateInternetGateway", "ec2:CreateRoute", "ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateSubnet",
      "ec2:CreateTags", "ec2:CreateVpc", "ec2:CreateVpcEndpoint", "ec2:DeleteFlowLogs", "ec2:DeleteInternetGateway", "ec2:DeleteRoute",
      "ec2:DeleteRouteTable", "ec2:DeleteSecurityGroup", "ec2:DeleteSubnet", "ec2:DeleteTags", "ec2:DeleteVpc", "ec2:DeleteVpcEndpoints",
      "ec2:DetachInternetGateway", "ec2:DisassociateRouteTable", "ec2:ModifySecurityGroupRules", "ec2:ModifySubnetAttribute",
      "ec2:ModifyVpcAttribute", "ec2:ModifyVpcEndpoint", "ec2:ReplaceRoute", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
    ]
    apigw = ["apigateway:DELETE", "apigateway:PATCH", "apigateway:POST", "apigateway:PUT", "apigateway:TagResource", "apigateway:UntagResource"]
    roles = [
      "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy", "iam:TagRole", "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription",
    ]
  }

  # Changes that take no resource.
  write_unscoped = [
    "ecs:DeregisterTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "kms:CreateKey",
    "lambda:CreateEventSourceMapping",
  ]
}

data "aws_iam_policy_document" "publish" {
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushTheImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.ecr_repository_arn]
  }
}

# Plan: read the environment and its state, and hold the state's lock while
# planning. The apply role has this too.
data "aws_iam_policy_document" "read" {
  statement {
    sid       = "StateBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.arn.bucket]
  }

  statement {
    sid       = "StateRead"
    actions   = ["s3:GetObject"]
    resources = [local.arn.state]
  }

  statement {
    sid       = "StateLock"
    actions   = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    resources = [local.arn.lock]
  }

  statement {
    sid       = "ReadWithoutResource"
    actions   = local.read_unscoped
    resources = ["*"]
  }

  statement {
    sid       = "ReadDynamodb"
    actions   = local.read_scoped.dynamodb
    resources = [local.arn.dynamodb]
  }

  statement {
    sid       = "ReadSqs"
    actions   = local.read_scoped.sqs
    resources = [local.arn.sqs]
  }

  statement {
    sid       = "ReadSns"
    actions   = local.read_scoped.sns
    resources = [local.arn.sns]
  }

  statement {
    sid       = "ReadLambda"
    actions   = local.read_scoped.lambda
    resources = [local.arn.lambda]
  }

  statement {
    sid       = "ReadMapping"
    actions   = local.read_scoped.mapping
    resources = [local.arn.mapping]
  }

  statement {
    sid       = "ReadLogs"
    actions   = local.read_scoped.logs
    resources = [local.arn.logs]
  }

  statement {
    sid       = "ReadAlarms"
    actions   = local.read_scoped.alarms
    resources = [local.arn.alarms]
  }

  statement {
    sid       = "ReadEc2"
    actions   = local.read_scoped.ec2
    resources = [local.arn.ec2]
  }

  statement {
    sid       = "ReadKmsKeys"
    actions   = local.read_scoped.kms_keys
    resources = [local.arn.kms_keys]
  }

  statement {
    sid       = "ReadEcr"
    actions   = local.read_scoped.ecr
    resources = [local.arn.ecr]
  }

  statement {
    sid       = "ReadEcs"
    actions   = local.read_scoped.ecs
    resources = [local.arn.ecs]
  }

  statement {
    sid       = "ReadApigw"
    actions   = local.read_scoped.apigw
    resources = [local.arn.apigw]
  }

  statement {
    sid       = "ReadRoles"
    actions   = local.read_scoped.roles
    resources = [local.arn.roles]
  }

  statement {
    sid       = "ReadCiRoles"
    actions   = local.read_scoped.ci_roles
    resources = [local.arn.ci_roles]
  }

  statement {
    sid       = "ReadCiPolicy"
    actions   = local.read_scoped.ci_policy
    resources = [local.arn.ci_policy]
  }

  statement {
    sid       = "ReadOidc"
    actions   = local.read_scoped.oidc
    resources = [local.arn.oidc]
  }
}

# Apply: change the environment's own resources and write its state. Two
# documents, as one would pass the 6,144-character limit of a managed policy:
# data and compute here, network, containers, API and roles below.
data "aws_iam_policy_document" "apply_services" {
  statement {
    sid       = "StateWrite"
    actions   = ["s3:PutObject"]
    resources = [local.arn.state]
  }

  statement {
    sid       = "WriteWithoutResource"
    actions   = local.write_unscoped
    resources = ["*"]
  }

  statement {
    sid       = "WriteDynamodb"
    actions   = local.write_scoped.dynamodb
    resources = [local.arn.dynamodb]
  }

  statement {
    sid       = "WriteSqs"
    actions   = local.write_scoped.sqs
    resources = [local.arn.sqs]
  }

  statement {
    sid       = "WriteSns"
    actions   = local.write_scoped.sns
    resources = [local.arn.sns]
  }

  statement {
    sid       = "WriteLambda"
    actions   = local.write_scoped.lambda
    resources = [local.arn.lambda]
  }

  statement {
    sid       = "WriteMapping"
    actions   = local.write_scoped.mapping
    resources = [local.arn.mapping]
  }

  statement {
    sid       = "WriteLogs"
    actions   = local.write_scoped.logs
    resources = [local.arn.logs]
  }

  statement {
    sid       = "WriteAlarms"
    actions   = local.write_scoped.alarms
    resources = [local.arn.alarms]
  }

  statement {
    sid       = "WriteKmsKeys"
    actions   = local.write_scoped.kms_keys
    resources = [local.arn.kms_keys]
  }

  statement {
    sid       = "WriteKmsAlias"
    actions   = local.write_scoped.kms_alias
    resources = [local.arn.kms_alias]
  }

  statement {
    sid       = "WriteEcr"
    actions   = local.write_scoped.ecr
    resources = [local.arn.ecr]
  }
}

data "aws_iam_policy_document" "apply_network" {
  statement {
    sid       = "WriteEcs"
    actions   = local.write_scoped.ecs
    resources = [local.arn.ecs]
  }

  statement {
    sid       = "WriteElb"
    actions   = local.write_scoped.elb
    resources = [local.arn.elb]
  }

  statement {
    sid       = "WriteEc2"
    actions   = local.write_scoped.ec2
    resources = [local.arn.ec2]
  }

  statement {
    sid       = "WriteApigw"
    actions   = local.write_scoped.apigw
    resources = [local.arn.apigw]
  }

  statement {
    sid       = "WriteRoles"
    actions   = local.write_scoped.roles
    resources = [local.arn.roles]
  }

  # The functions', tasks' and flow logs' roles go to their services only.
  statement {
    sid       = "PassTheEnvironmentsRoles"
    actions   = ["iam:PassRole"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
    }
  }

  # First deploys in an account create the service-linked roles of ECS, the
  # load balancers and API Gateway's VPC links.
  statement {
    sid       = "ServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = [local.arn.linked]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com", "ops.apigateway.amazonaws.com"]
    }
  }
}
