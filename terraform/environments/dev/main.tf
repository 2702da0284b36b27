# The dev environment: the seed's deployment of orderledger.

locals {
  # The read table in use: the module's, or the one a blue/green rebuild
  # filled (var.orders_table), in the same account and region.
  orders_table_arn = var.orders_table == null ? module.eventstore.orders_table_arn : replace(module.eventstore.orders_table_arn, "/table\\/.*$/", "table/${var.orders_table}")
  orders_table_env = var.orders_table == null ? {} : { LEDGER_ORDERS_TABLE = var.orders_table }
}

module "networking" {
  source = "../../modules/networking"

  env         = var.env
  kms_key_arn = aws_kms_key.main.arn
}

module "eventstore" {
  source = "../../modules/eventstore"

  env                 = var.env
  kms_key_arn         = aws_kms_key.main.arn
  deletion_protection = var.deletion_protection
}

module "messaging" {
  source = "../../modules/messaging"

  env                       = var.env
  kms_key_arn               = aws_kms_key.main.arn
  processor_timeout_seconds = var.processor_timeout_seconds
}

module "lambda" {
  source = "../../modules/lambda"

  env                       = var.env
  package_dir               = "${path.root}/../../../build/lambdas"
  api_enabled               = var.api_backend == "lambda"
  kms_key_arn               = aws_kms_key.main.arn
  processor_timeout_seconds = var.processor_timeout_seconds
  alarm_actions             = concat([module.monitoring.alarm_topic_arn], var.alarm_actions)

  events_table_arn          = module.eventstore.events_table_arn
  events_stream_arn         = module.eventstore.events_stream_arn
  orders_table_arn          = local.orders_table_arn
  environment               = local.orders_table_env
  events_topic_arn          = module.messaging.events_topic_arn
  completed_topic_arn       = module.messaging.completed_topic_arn
  processing_queue_arn      = module.messaging.processing_queue_arn
  dlq_name                  = module.messaging.dlq_name
  stream_failure_queue_arn  = module.messaging.stream_failure_queue_arn
  stream_failure_queue_name = module.messaging.stream_failure_queue_name

  vpc_id                  = module.networking.vpc_id
  vpc_cidr_block          = module.networking.vpc_cidr_block
  subnet_ids              = module.networking.private_subnet_ids
  dynamodb_prefix_list_id = module.networking.dynamodb_prefix_list_id
}

module "container" {
  source = "../../modules/container"

  env                 = var.env
  image_tag           = var.image_tag
  kms_key_arn         = aws_kms_key.main.arn
  certificate_arn     = var.certificate_arn
  deletion_protection = var.deletion_protection

  events_table_arn = module.eventstore.events_table_arn
  orders_table_arn = local.orders_table_arn
  environment      = local.orders_table_env

  vpc_id                  = module.networking.vpc_id
  vpc_cidr_block          = module.networking.vpc_cidr_block
  public_subnet_ids       = module.networking.public_subnet_ids
  private_subnet_ids      = module.networking.private_subnet_ids
  dynamodb_prefix_list_id = module.networking.dynamodb_prefix_list_id
  s3_prefix_list_id       = module.networking.s3_prefix_list_id
}

module "api_gateway" {
  source = "../../modules/api_gateway"

  env          = var.env
  backend      = var.api_backend
  kms_key_arn  = aws_kms_key.main.arn
  jwt_issuer   = var.jwt_issuer
  jwt_audience = var.jwt_audience

  lambda_function_name = module.lambda.api_function_name
  lambda_invoke_arn    = module.lambda.api_invoke_arn

  alb_listener_arn      = module.container.listener_arn
  alb_listener_port     = module.container.listener_port
  alb_security_group_id = module.container.alb_security_group_id
  vpc_id                = module.networking.vpc_id
  vpc_link_subnet_ids   = module.networking.private_subnet_ids
}

module "monitoring" {
  source = "../../modules/monitoring"

  env            = var.env
  kms_key_arn    = aws_kms_key.main.arn
  alarm_email    = var.alarm_email
  function_names = module.lambda.function_names
  dlq_name       = module.messaging.dlq_name
  api_id         = module.api_gateway.api_id
}

# The roles GitHub Actions assumes through OpenID Connect (deploy.yml), when
# github_repository is set. An administrator applies this module: the apply
# role cannot change these roles (README "Deploying from CI").
module "github_oidc" {
  source = "../../modules/github_oidc"
  count  = var.github_repository == null ? 0 : 1

  env                    = var.env
  github_repository      = var.github_repository
  github_environment     = var.github_environment
  oidc_provider_arn      = var.github_oidc_provider_arn
  ecr_repository_arn     = module.container.ecr_repository_arn
  terraform_state_bucket = var.terraform_state_bucket
}
