variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the environment's EKS cluster; also the prefix of the VPC, roles and (by default) the model bucket."
  type        = string
  default     = "symptom-dx"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 chars of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment label put on every resource (Environment tag)."
  type        = string
  default     = "dev"
}

variable "tags" {
  description = "Extra tags for every AWS resource (merged with Project/Environment/ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones for the subnets."
  type        = number
  default     = 3
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per AZ (resilient)."
  type        = bool
  default     = true
}

variable "kubernetes_version" {
  description = "EKS Kubernetes <major>.<minor> version."
  type        = string
  default     = "1.34"
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API publicly (restricted to endpoint_public_access_cidrs)."
  type        = bool
  default     = true
}

# Required on purpose: no default can know your egress range, and an empty list
# with a public endpoint would make EKS open it to 0.0.0.0/0.
variable "endpoint_public_access_cidrs" {
  description = "Required. CIDR blocks allowed to reach the public Kubernetes API (your office/VPN egress range, e.g. [\"203.0.113.0/24\"]); [] together with endpoint_public_access = false for a private-only API."
  type        = list(string)
  nullable    = false

  validation {
    condition     = alltrue([for cidr in var.endpoint_public_access_cidrs : can(cidrhost(cidr, 0))])
    error_message = "endpoint_public_access_cidrs must hold valid CIDR blocks such as 203.0.113.0/24."
  }

  validation {
    condition     = alltrue([for cidr in var.endpoint_public_access_cidrs : !can(regex("/0$", cidr))])
    error_message = "endpoint_public_access_cidrs must not open the Kubernetes API to the whole internet (0.0.0.0/0, ::/0): name your own egress range."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.endpoint_public_access_cidrs) > 0
    error_message = "With endpoint_public_access = true, list at least one CIDR (EKS would otherwise allow 0.0.0.0/0); or set endpoint_public_access = false."
  }
}

variable "cluster_admin_arns" {
  description = "IAM role/user ARNs (team roles, CI) that get cluster-admin via EKS access entries; the identity running terraform is always admin."
  type        = list(string)
  default     = []
}

variable "system_node_group" {
  description = "System managed node group (add-ons, controllers, monitoring): instance types, ON_DEMAND or SPOT, min/max/desired size, root disk GiB."
  type = object({
    instance_types = list(string)
    capacity_type  = string
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = number
  })
  default = {
    instance_types = ["t3.large"]
    capacity_type  = "ON_DEMAND"
    min_size       = 2
    max_size       = 3
    desired_size   = 2
    disk_size_gib  = 50
  }
}

variable "workload_node_group" {
  description = "Autoscaling workload managed node group (pipelines, MLflow, MinIO, serving): instance types, ON_DEMAND or SPOT, min/max/desired size, root disk GiB."
  type = object({
    instance_types = list(string)
    capacity_type  = string
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = number
  })
  default = {
    instance_types = ["m6i.xlarge"]
    capacity_type  = "ON_DEMAND"
    min_size       = 1
    max_size       = 4
    desired_size   = 2
    disk_size_gib  = 100
  }
}

variable "storage_backend" {
  description = "Model/dataset storage: \"minio\" (in-cluster MinIO on EBS, default) or \"s3\" (S3 bucket + EKS Pod Identity)."
  type        = string
  default     = "minio"
}

variable "bucket_name" {
  description = "Model bucket name; null means \"<name>-models\" (symptom-dx-models with the defaults). S3 bucket names are global: override if taken."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Allow terraform destroy to empty and delete the S3 bucket."
  type        = bool
  default     = false
}

variable "minio_volume_size" {
  description = "MinIO persistent volume size (storage_backend = minio)."
  type        = string
  default     = "50Gi"
}

variable "cert_manager_version" {
  description = "cert-manager chart version."
  type        = string
  default     = "v1.18.2"
}

variable "kserve_version" {
  description = "KServe chart version (kserve-crd and kserve)."
  type        = string
  default     = "v0.16.0"
}

variable "kube_prometheus_stack_version" {
  description = "kube-prometheus-stack chart version."
  type        = string
  default     = "78.5.0"
}

variable "minio_chart_version" {
  description = "MinIO chart version."
  type        = string
  default     = "5.4.0"
}

variable "cluster_autoscaler_chart_version" {
  description = "cluster-autoscaler chart version."
  type        = string
  default     = "9.52.1"
}

variable "cluster_autoscaler_image_tag" {
  description = "cluster-autoscaler image tag; keep its minor equal to kubernetes_version."
  type        = string
  default     = "v1.34.0"
}

variable "install_kubeflow_pipelines" {
  description = "Install Kubeflow Pipelines standalone (kustomize manifests, needs aws + kubectl locally)."
  type        = bool
  default     = true
}

variable "kfp_version" {
  description = "Kubeflow Pipelines release tag to install."
  type        = string
  default     = "2.14.3"
}

variable "image_tag" {
  description = "Tag of our images in ECR (the TAG you push with `make images`); KServe's storage initializer runs it."
  type        = string
  default     = "0.1.0"
}

variable "ecr_force_delete" {
  description = "Allow terraform destroy to delete the ECR repositories with their images."
  type        = bool
  default     = false
}
