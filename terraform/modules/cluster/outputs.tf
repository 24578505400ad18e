output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Endpoint of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64-encoded CA certificate of the cluster."
  value       = module.eks.cluster_certificate_authority_data
}

output "cluster_version" {
  description = "Kubernetes version of the control plane."
  value       = module.eks.cluster_version
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (for IRSA, if ever needed next to Pod Identity)."
  value       = module.eks.oidc_provider_arn
}

output "node_security_group_id" {
  description = "Security group shared by the managed node groups."
  value       = module.eks.node_security_group_id
}

output "ebs_csi_role_arn" {
  description = "IAM role ARN used by the EBS CSI controller through Pod Identity."
  value       = aws_iam_role.ebs_csi.arn
}

output "eks_managed_node_groups_autoscaling_group_names" {
  description = "Auto Scaling group names behind the managed node groups."
  value       = module.eks.eks_managed_node_groups_autoscaling_group_names
}
