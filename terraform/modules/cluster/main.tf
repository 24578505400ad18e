# EKS control plane, core add-ons and two EC2 managed node groups:
#   system   - small, labelled symptom-dx/node-role=system, for cluster add-ons;
#   workload - autoscaling group for pipelines, MLflow, MinIO and serving.
# Add-on IAM uses EKS Pod Identity (the eks-pod-identity-agent add-on is
# installed before the nodes join).

data "aws_partition" "current" {}

module "eks" {
  #checkov:skip=CKV_TF_1:Registry module pinned to an exact release version; the registry does not serve commit-hash sources and the issue asks for registry modules.
  source  = "terraform-aws-modules/eks/aws"
  version = "21.3.2"

  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version

  vpc_id                   = var.vpc_id
  subnet_ids               = var.private_subnet_ids
  control_plane_subnet_ids = var.control_plane_subnet_ids

  endpoint_private_access      = true
  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

  # The identity running `terraform apply` becomes cluster admin through an
  # EKS access entry (no aws-auth ConfigMap).
  enable_cluster_creator_admin_permissions = true

  # Further administrators (team roles, CI) through EKS access entries.
  access_entries = {
    for index, arn in var.cluster_admin_arns : "admin-${index}" => {
      principal_arn = arn
      policy_associations = {
        admin = {
          policy_arn = "arn:${data.aws_partition.current.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = {
            type = "cluster"
          }
        }
      }
    }
  }

  # Secrets envelope encryption with a module-managed KMS key (module default),
  # control plane logs to CloudWatch.
  enabled_log_types = var.enabled_log_types

  addons = {
    vpc-cni = {
      before_compute = true
      # Enforce the application's NetworkPolicies (manifests/security/).
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    eks-pod-identity-agent = {
      before_compute = true
    }
    kube-proxy = {}
    coredns    = {}
    # CPU and memory for the HorizontalPodAutoscaler KServe makes for the predictor.
    metrics-server = {}
    aws-ebs-csi-driver = {
      pod_identity_association = [{
        role_arn        = aws_iam_role.ebs_csi.arn
        service_account = "ebs-csi-controller-sa"
      }]
    }
  }

  # The metrics-server add-on serves metrics.k8s.io on 10251, which this module
  # version does not open from the control plane (its recommended rules have it from
  # 21.7.0): without it the HPA shows <unknown>, `kubectl top` fails and namespaces
  # hang in Terminating. Same key and fields as the module's later rule, so a bump
  # merges the two instead of creating a duplicate rule that AWS refuses.
  node_security_group_additional_rules = {
    ingress_cluster_10251_webhook = {
      description                   = "Cluster API to node 10251/tcp webhook"
      protocol                      = "tcp"
      from_port                     = 10251
      to_port                       = 10251
      type                          = "ingress"
      source_cluster_security_group = true
    }
  }

  eks_managed_node_groups = {
    system = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.system_node_group.instance_types
      capacity_type  = var.system_node_group.capacity_type
      min_size       = var.system_node_group.min_size
      max_size       = var.system_node_group.max_size
      desired_size   = var.system_node_group.desired_size

      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.system_node_group.disk_size_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }

      labels = {
        "symptom-dx/node-role" = "system"
      }
    }

    workload = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.workload_node_group.instance_types
      capacity_type  = var.workload_node_group.capacity_type
      min_size       = var.workload_node_group.min_size
      max_size       = var.workload_node_group.max_size
      desired_size   = var.workload_node_group.desired_size

      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.workload_node_group.disk_size_gib
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }

      labels = {
        "symptom-dx/node-role" = "workload"
      }

      # cluster-autoscaler auto-discovery (EKS also tags the ASG with these).
      tags = {
        "k8s.io/cluster-autoscaler/enabled"             = "true"
        "k8s.io/cluster-autoscaler/${var.cluster_name}" = "owned"
      }
    }
  }

  tags = var.tags
}

################################################################################
# EBS CSI driver: Pod Identity role for the controller service account
################################################################################

data "aws_iam_policy_document" "pod_identity_trust" {
  statement {
    sid     = "EksPodIdentity"
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ebs_csi" {
  name_prefix        = "${var.cluster_name}-ebs-csi-"
  description        = "EBS CSI controller (kube-system/ebs-csi-controller-sa) via EKS Pod Identity"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  role       = aws_iam_role.ebs_csi.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
}
