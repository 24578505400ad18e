variable "cluster_name" {
  description = "Name of the EKS cluster the platform is installed into."
  type        = string
}

variable "region" {
  description = "AWS region of the cluster and the model bucket."
  type        = string
}

variable "storage_backend" {
  description = "Where models and datasets live: \"minio\" (MinIO in the cluster on an EBS volume, the design default) or \"s3\" (an encrypted, versioned S3 bucket reached through EKS Pod Identity)."
  type        = string
  default     = "minio"

  validation {
    condition     = contains(["minio", "s3"], var.storage_backend)
    error_message = "storage_backend must be \"minio\" or \"s3\"."
  }
}

variable "bucket_name" {
  description = "Name of the model bucket (S3 bucket or MinIO bucket). Datasets go under datasets/, models under models/."
  type        = string
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy delete a non-empty S3 bucket (all object versions). Keep false outside throwaway environments."
  type        = bool
  default     = false
}

variable "helm_values_dir" {
  description = "Directory holding the platform override values files (helm/platform in this repository)."
  type        = string
}

variable "cert_manager_version" {
  description = "cert-manager chart version (https://charts.jetstack.io)."
  type        = string
  default     = "v1.18.2"
}

variable "kserve_version" {
  description = "KServe chart version for both kserve-crd and kserve (oci://ghcr.io/kserve/charts)."
  type        = string
  default     = "v0.16.0"
}

variable "kube_prometheus_stack_version" {
  description = "kube-prometheus-stack chart version (https://prometheus-community.github.io/helm-charts)."
  type        = string
  default     = "78.5.0"
}

variable "minio_chart_version" {
  description = "MinIO chart version (https://charts.min.io/); used only when storage_backend is \"minio\"."
  type        = string
  default     = "5.4.0"
}

variable "cluster_autoscaler_chart_version" {
  description = "cluster-autoscaler chart version (https://kubernetes.github.io/autoscaler)."
  type        = string
  default     = "9.52.1"
}

variable "cluster_autoscaler_image_tag" {
  description = "cluster-autoscaler image tag; its minor version must match the cluster's Kubernetes minor version."
  type        = string
  default     = "v1.34.0"
}

variable "install_kubeflow_pipelines" {
  description = "Install Kubeflow Pipelines standalone from the upstream kustomize manifests (needs aws and kubectl on the machine running terraform)."
  type        = bool
  default     = true
}

variable "kfp_version" {
  description = "Kubeflow Pipelines release (git ref of github.com/kubeflow/pipelines) whose kustomize manifests are applied."
  type        = string
  default     = "2.14.3"
}

variable "minio_volume_size" {
  description = "Size of MinIO's EBS-backed persistent volume."
  type        = string
  default     = "50Gi"
}

variable "tags" {
  description = "Tags added to every AWS resource of this module."
  type        = map(string)
  default     = {}
}

variable "images" {
  description = "Images of ours the platform runs (Dockerfile targets of `make images`); one ECR repository <cluster_name>/<image> each."
  type        = list(string)
  default     = ["components", "serving", "storage-initializer", "ui"]

  validation {
    condition     = contains(var.images, "serving") && contains(var.images, "storage-initializer")
    error_message = "images must include serving (the registry output is derived from it) and storage-initializer (KServe's storage initializer)."
  }
}

variable "image_tag" {
  description = "Tag of our images in ECR (the TAG of `make images`, by default the version in pyproject.toml); KServe's storage initializer runs this tag."
  type        = string
  default     = "0.1.0"
}

variable "ecr_force_delete" {
  description = "Let terraform destroy delete the ECR repositories with the images in them. Keep false outside throwaway environments."
  type        = bool
  default     = false
}
