# Namespaces, default storage class and the storage contract shared with the
# application (manifests/). The namespace and service account names below are the
# ones the rest of the project uses; change them only together with it.

locals {
  namespaces = toset([
    "cert-manager",
    "kserve",
    "kserve-inference",
    "kubeflow",
    "minio",
    "mlflow",
    "monitoring",
  ])

  # Every workload that reads or writes the model bucket, with the Kubernetes
  # service account it runs as. In "s3" mode each gets its own IAM role bound
  # through EKS Pod Identity; in "minio" mode each namespace gets the
  # model-store-credentials Secret instead.
  bucket_workloads = {
    kserve-storage-initializer = {
      namespace       = "kserve-inference"
      service_account = "disease-classifier"
      access          = "read"
    }
    pipelines = {
      namespace       = "kubeflow"
      service_account = "pipeline-runner"
      access          = "readwrite"
    }
    mlflow = {
      namespace       = "mlflow"
      service_account = "mlflow"
      access          = "readwrite"
    }
  }

  use_s3    = var.storage_backend == "s3"
  use_minio = var.storage_backend == "minio"

  minio_host     = "minio.minio.svc.cluster.local:9000"
  minio_endpoint = "http://${local.minio_host}"
  s3_endpoint    = "https://s3.${var.region}.amazonaws.com"
}

resource "kubernetes_namespace_v1" "this" {
  for_each = local.namespaces

  metadata {
    name = each.key
    labels = {
      "app.kubernetes.io/part-of" = "symptom-dx-platform"
    }
  }

  # kubectl (KFP manifests) and the charts may add their own labels and
  # annotations to these namespaces; do not fight them on every apply.
  lifecycle {
    ignore_changes = [metadata[0].labels, metadata[0].annotations]
  }
}

# gp3 as the default StorageClass (EBS CSI driver add-on), encrypted at rest.
resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name = "gp3"
    annotations = {
      "storageclass.kubernetes.io/is-default-class" = "true"
    }
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    encrypted = "true"
  }
}
