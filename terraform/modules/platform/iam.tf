################################################################################
# EKS Pod Identity roles for the workloads that touch the model bucket
# (storage_backend = "s3"). No static keys: the eks-pod-identity-agent hands
# each pod temporary credentials for its service account's role.
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

data "aws_iam_policy_document" "bucket_access" {
  for_each = local.use_s3 ? local.bucket_workloads : {}

  statement {
    sid       = "ListBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.models[0].arn]
  }

  statement {
    sid     = "Objects"
    effect  = "Allow"
    actions = each.value.access == "readwrite" ? ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"] : ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.models[0].arn}/*",
    ]
  }

  statement {
    sid       = "BucketKey"
    effect    = "Allow"
    actions   = each.value.access == "readwrite" ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"]
    resources = [aws_kms_key.bucket[0].arn]
  }
}

resource "aws_iam_role" "bucket_access" {
  for_each = local.use_s3 ? local.bucket_workloads : {}

  name_prefix        = "${var.cluster_name}-${substr(each.key, 0, 16)}-"
  description        = "Model bucket ${each.value.access} access for ${each.value.namespace}/${each.value.service_account} via EKS Pod Identity"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "bucket_access" {
  for_each = local.use_s3 ? local.bucket_workloads : {}

  name   = "model-bucket-${each.value.access}"
  role   = aws_iam_role.bucket_access[each.key].id
  policy = data.aws_iam_policy_document.bucket_access[each.key].json
}

resource "aws_eks_pod_identity_association" "bucket_access" {
  for_each = local.use_s3 ? local.bucket_workloads : {}

  cluster_name    = var.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.bucket_access[each.key].arn
  tags            = var.tags
}

################################################################################
# cluster-autoscaler (kube-system/cluster-autoscaler)
################################################################################

data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid    = "Describe"
    effect = "Allow"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
      "eks:DescribeNodegroup",
    ]
    #checkov:skip=CKV_AWS_356:Describe* calls of the autoscaler do not support resource-level permissions.
    resources = ["*"]
  }

  statement {
    sid    = "ScaleOwnGroupsOnly"
    effect = "Allow"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"
      values   = ["owned"]
    }
  }
}

resource "aws_iam_role" "cluster_autoscaler" {
  name_prefix        = "${var.cluster_name}-autoscaler-"
  description        = "cluster-autoscaler (kube-system/cluster-autoscaler) via EKS Pod Identity"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "cluster_autoscaler" {
  name   = "cluster-autoscaler"
  role   = aws_iam_role.cluster_autoscaler.id
  policy = data.aws_iam_policy_document.cluster_autoscaler.json
}

resource "aws_eks_pod_identity_association" "cluster_autoscaler" {
  cluster_name    = var.cluster_name
  namespace       = "kube-system"
  service_account = "cluster-autoscaler"
  role_arn        = aws_iam_role.cluster_autoscaler.arn
  tags            = var.tags
}
