################################################################################
# storage_backend = "s3": encrypted, versioned, private, TLS-only bucket
################################################################################

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "bucket_kms" {
  count = local.use_s3 ? 1 : 0

  #checkov:skip=CKV_AWS_109:In a KMS key policy Resource "*" means this key only; the statement is the AWS default that delegates key access to IAM in this account.
  #checkov:skip=CKV_AWS_111:Same AWS default key policy statement; write access is granted to workloads only through their scoped IAM policies (iam.tf).
  #checkov:skip=CKV_AWS_356:Key policies cannot name the key ARN of the key they belong to; "*" is the documented form.
  # Standard key policy: the account administers the key through IAM; the
  # workload roles get kms:Decrypt/GenerateDataKey from their IAM policies.
  statement {
    sid       = "EnableAccountIamPolicies"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "bucket" {
  count = local.use_s3 ? 1 : 0

  description             = "SSE-KMS key of the ${var.bucket_name} model bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.bucket_kms[0].json
  tags                    = var.tags
}

resource "aws_kms_alias" "bucket" {
  count = local.use_s3 ? 1 : 0

  name          = "alias/${var.bucket_name}"
  target_key_id = aws_kms_key.bucket[0].key_id
}

resource "aws_s3_bucket" "models" {
  count = local.use_s3 ? 1 : 0
  #checkov:skip=CKV_AWS_18:Server access logging needs a second log bucket; CloudTrail data events are the recommended audit path for this dev environment.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a DR decision per environment; models are reproducible from the pipeline and the bucket is versioned.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 event notifications in this design (pipelines are triggered through Kubeflow Pipelines).

  bucket        = var.bucket_name
  force_destroy = var.bucket_force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "models" {
  count = local.use_s3 ? 1 : 0

  bucket = aws_s3_bucket.models[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "models" {
  count = local.use_s3 ? 1 : 0

  bucket                  = aws_s3_bucket.models[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "models" {
  count = local.use_s3 ? 1 : 0

  bucket = aws_s3_bucket.models[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "models" {
  count = local.use_s3 ? 1 : 0

  bucket = aws_s3_bucket.models[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.bucket[0].arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "models" {
  count = local.use_s3 ? 1 : 0

  bucket = aws_s3_bucket.models[0].id

  rule {
    id     = "abort-incomplete-uploads-and-expire-old-versions"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = 90
    }
  }

  depends_on = [aws_s3_bucket_versioning.models]
}

data "aws_iam_policy_document" "bucket" {
  count = local.use_s3 ? 1 : 0

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.models[0].arn,
      "${aws_s3_bucket.models[0].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyOutdatedTls"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.models[0].arn,
      "${aws_s3_bucket.models[0].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "models" {
  count = local.use_s3 ? 1 : 0

  bucket = aws_s3_bucket.models[0].id
  policy = data.aws_iam_policy_document.bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.models]
}

################################################################################
# storage_backend = "minio": credentials generated at apply time, never in git
################################################################################

resource "random_password" "minio_root" {
  count = local.use_minio ? 1 : 0

  length  = 32
  special = false
}

resource "random_password" "minio_workload" {
  count = local.use_minio ? 1 : 0

  length  = 32
  special = false
}

# Root credentials for the MinIO chart (existingSecret).
resource "kubernetes_secret_v1" "minio_root" {
  count = local.use_minio ? 1 : 0

  metadata {
    name      = "minio-root-credentials"
    namespace = kubernetes_namespace_v1.this["minio"].metadata[0].name
  }

  data = {
    rootUser     = "minio-admin"
    rootPassword = random_password.minio_root[0].result
  }
}

# Secret key of the MinIO user the workloads share (chart `users` entry).
resource "kubernetes_secret_v1" "minio_workload_user" {
  count = local.use_minio ? 1 : 0

  metadata {
    name      = "minio-workload-user"
    namespace = kubernetes_namespace_v1.this["minio"].metadata[0].name
  }

  data = {
    secretKey = random_password.minio_workload[0].result
  }
}

# model-store-credentials in every namespace whose workload touches the bucket.
# The data keys are what boto3, MLflow and kserve_storage read from the
# environment. KServe's controller does not pass those on to the storage
# initializer: it builds the initializer's S3 settings from the annotations of
# the Secret attached to the InferenceService's service account
# (manifests/components/minio/), so the endpoint is repeated there,
# as host:port without a scheme, with TLS off for the in-cluster MinIO.
resource "kubernetes_secret_v1" "model_store" {
  for_each = local.use_minio ? local.bucket_workloads : {}

  metadata {
    name      = "model-store-credentials"
    namespace = kubernetes_namespace_v1.this[each.value.namespace].metadata[0].name
    annotations = {
      "serving.kserve.io/s3-endpoint"  = local.minio_host
      "serving.kserve.io/s3-usehttps"  = "0"
      "serving.kserve.io/s3-verifyssl" = "0"
      "serving.kserve.io/s3-region"    = var.region
    }
  }

  data = {
    AWS_ACCESS_KEY_ID      = local.minio_workload_user
    AWS_SECRET_ACCESS_KEY  = random_password.minio_workload[0].result
    AWS_ENDPOINT_URL       = local.minio_endpoint
    AWS_DEFAULT_REGION     = var.region
    MLFLOW_S3_ENDPOINT_URL = local.minio_endpoint
    S3_VERIFY_SSL          = "0"
    S3_USE_HTTPS           = "0"
  }
}

locals {
  minio_workload_user = "symptom-dx"
}

# With Pod Identity on AWS S3 the pipeline's steps need no keys, but their pods still name
# model-store-credentials: Kubeflow Pipelines 2.14 cannot mark a Secret optional (that came
# in 2.15). So the Secret exists in kubeflow with the same keys, empty: the steps treat an
# empty key as unset (symptom_dx.steps) and boto3 falls back to Pod Identity.
resource "kubernetes_secret_v1" "model_store_pipeline_s3" {
  count = local.use_s3 ? 1 : 0

  metadata {
    name      = "model-store-credentials"
    namespace = kubernetes_namespace_v1.this["kubeflow"].metadata[0].name
  }

  data = {
    AWS_ACCESS_KEY_ID     = ""
    AWS_SECRET_ACCESS_KEY = ""
    AWS_ENDPOINT_URL      = ""
    AWS_DEFAULT_REGION    = var.region
  }
}

# MLflow's basic-auth app: the admin user it creates at its first start (in
# mlflow), and the same credentials for the pipeline steps that write to the
# registry (in kubeflow). Nothing else in the cluster can move the champion.
# Terraform seeds both Secrets once: MLflow keeps the password in its own user
# database after the first start, so a rotation (README: rotate-mlflow-
# credentials) changes MLflow and the Secrets together, and a later apply must
# not write the first password back (ignore_changes).
resource "random_password" "mlflow_admin" {
  length  = 32
  special = false
}

resource "random_password" "mlflow_flask_secret" {
  length  = 48
  special = false
}

resource "kubernetes_secret_v1" "mlflow_auth" {
  metadata {
    name      = "mlflow-auth"
    namespace = kubernetes_namespace_v1.this["mlflow"].metadata[0].name
  }

  data = {
    MLFLOW_AUTH_ADMIN_USERNAME     = local.mlflow_admin_user
    MLFLOW_AUTH_ADMIN_PASSWORD     = random_password.mlflow_admin.result
    MLFLOW_FLASK_SERVER_SECRET_KEY = random_password.mlflow_flask_secret.result
  }

  lifecycle {
    ignore_changes = [data]
  }
}

resource "kubernetes_secret_v1" "mlflow_credentials" {
  metadata {
    name      = "mlflow-credentials"
    namespace = kubernetes_namespace_v1.this["kubeflow"].metadata[0].name
  }

  data = {
    MLFLOW_TRACKING_USERNAME = local.mlflow_admin_user
    MLFLOW_TRACKING_PASSWORD = random_password.mlflow_admin.result
  }

  lifecycle {
    ignore_changes = [data]
  }
}

locals {
  mlflow_admin_user = "symptom-dx-admin"
}
