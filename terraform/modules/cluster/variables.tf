variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes <major>.<minor> version of the control plane and the managed node groups."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.34."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnet IDs for the managed node groups."
  type        = list(string)
}

variable "control_plane_subnet_ids" {
  description = "Subnet IDs for the EKS control plane ENIs (intra subnets)."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly (restricted by endpoint_public_access_cidrs). The private endpoint is always on."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint (your office/VPN range). Must be non-empty when endpoint_public_access is true: EKS reads an empty list as 0.0.0.0/0."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for cidr in var.endpoint_public_access_cidrs : can(cidrhost(cidr, 0)) && !can(regex("/0$", cidr))])
    error_message = "endpoint_public_access_cidrs must hold valid CIDR blocks narrower than /0 (never 0.0.0.0/0 or ::/0)."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.endpoint_public_access_cidrs) > 0
    error_message = "With endpoint_public_access = true, list at least one CIDR; or set endpoint_public_access = false."
  }
}

variable "cluster_admin_arns" {
  description = "IAM role/user ARNs granted cluster-admin through EKS access entries, besides the identity that runs terraform."
  type        = list(string)
  default     = []
}

variable "enabled_log_types" {
  description = "EKS control plane log types shipped to CloudWatch."
  type        = list(string)
  default     = ["api", "audit", "authenticator"]
}

variable "system_node_group" {
  description = "Small on-demand node group for cluster add-ons (CoreDNS, controllers, monitoring). Sizes are the managed node group min/max/desired."
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

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.system_node_group.capacity_type)
    error_message = "system_node_group.capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "workload_node_group" {
  description = "Autoscaling node group for pipeline runs, MLflow, MinIO and model serving (scaled by cluster-autoscaler between min_size and max_size)."
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

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.workload_node_group.capacity_type)
    error_message = "workload_node_group.capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
