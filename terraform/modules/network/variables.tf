variable "name" {
  description = "Name prefix for the VPC and its subnets (usually the cluster name)."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC. Private subnets take /20s, public and intra subnets /24s."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread subnets over (the design uses 3)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4 (EKS needs subnets in at least 2 AZs)."
  }
}

variable "single_nat_gateway" {
  description = "Use one shared NAT gateway (cheaper, one AZ is a single point of failure for egress) instead of one per AZ."
  type        = bool
  default     = true
}

variable "enable_flow_log" {
  description = "Send VPC flow logs to a CloudWatch log group created by the VPC module."
  type        = bool
  default     = true
}

variable "flow_log_retention_in_days" {
  description = "Retention of the VPC flow log group, in days."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
