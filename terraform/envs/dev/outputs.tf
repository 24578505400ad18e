output "region" {
  description = "AWS region of the environment."
  value       = var.region
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.cluster.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.cluster.cluster_endpoint
}

output "update_kubeconfig_command" {
  description = "Command that writes a kubeconfig context for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.cluster.cluster_name}"
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "storage_backend" {
  description = "Storage backend in use (minio or s3)."
  value       = module.platform.storage_backend
}

output "bucket_name" {
  description = "Model bucket (datasets/ and models/ prefixes)."
  value       = module.platform.bucket_name
}

output "s3_endpoint_url" {
  description = "S3 endpoint the workloads use (MinIO service or regional S3)."
  value       = module.platform.s3_endpoint_url
}

output "bucket_access_role_arns" {
  description = "Pod Identity role ARN per bucket workload (s3 mode)."
  value       = module.platform.bucket_access_role_arns
}

output "bucket_workloads" {
  description = "Namespace / service account / access level of each bucket workload."
  value       = module.platform.bucket_workloads
}

output "model_store_secret_name" {
  description = "Secret with MinIO credentials in each workload namespace (minio mode)."
  value       = module.platform.model_store_secret_name
}

output "ebs_csi_role_arn" {
  description = "Pod Identity role ARN of the EBS CSI controller."
  value       = module.cluster.ebs_csi_role_arn
}

output "cluster_autoscaler_role_arn" {
  description = "Pod Identity role ARN of cluster-autoscaler."
  value       = module.platform.cluster_autoscaler_role_arn
}

output "grafana_admin_password" {
  description = "Generated Grafana admin password (terraform output -raw grafana_admin_password)."
  value       = module.platform.grafana_admin_password
  sensitive   = true
}

output "image_registry" {
  description = "REGISTRY for `make images ... PUSH=1`: <account>.dkr.ecr.<region>.amazonaws.com/<name>."
  value       = module.platform.image_registry
}

output "image_repository_urls" {
  description = "ECR repository URL per image."
  value       = module.platform.image_repository_urls
}

output "image_tag" {
  description = "TAG for `make images ... PUSH=1` (the storage initializer's tag)."
  value       = module.platform.image_tag
}
