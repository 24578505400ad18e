output "storage_backend" {
  description = "Storage backend in use: minio or s3."
  value       = var.storage_backend
}

output "bucket_name" {
  description = "Name of the model bucket (datasets/ and models/ prefixes)."
  value       = var.bucket_name
}

output "bucket_arn" {
  description = "ARN of the S3 model bucket (null when storage_backend is minio)."
  value       = local.use_s3 ? aws_s3_bucket.models[0].arn : null
}

output "s3_endpoint_url" {
  description = "S3 endpoint URL the workloads should use (MinIO service or regional S3)."
  value       = local.use_s3 ? local.s3_endpoint : local.minio_endpoint
}

output "bucket_access_role_arns" {
  description = "Pod Identity role ARN per bucket workload (empty map when storage_backend is minio)."
  value       = { for k, r in aws_iam_role.bucket_access : k => r.arn }
}

output "bucket_workloads" {
  description = "Workloads bound to the model bucket: namespace, service account and access level."
  value       = local.bucket_workloads
}

output "model_store_secret_name" {
  description = "Name of the Secret holding MinIO credentials in each workload namespace (null when storage_backend is s3)."
  value       = local.use_minio ? "model-store-credentials" : null
}

output "cluster_autoscaler_role_arn" {
  description = "Pod Identity role ARN of cluster-autoscaler."
  value       = aws_iam_role.cluster_autoscaler.arn
}

output "grafana_admin_password" {
  description = "Generated Grafana admin password (user admin)."
  value       = random_password.grafana_admin.result
  sensitive   = true
}

output "image_registry" {
  description = "Registry prefix of our images in ECR (<account>.dkr.ecr.<region>.amazonaws.com/<cluster name>): the REGISTRY of `make images`."
  value       = local.image_registry
}

output "image_repository_urls" {
  description = "ECR repository URL per image (components, serving, storage-initializer, ui)."
  value       = { for name, repository in aws_ecr_repository.images : name => repository.repository_url }
}

output "image_tag" {
  description = "Tag of our images KServe's storage initializer runs: the TAG to push with `make images`."
  value       = var.image_tag
}
