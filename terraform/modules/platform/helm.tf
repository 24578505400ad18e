# Platform releases, each with its small override file from helm/platform so
# an operator can install the same thing with plain `helm` (see
# helm/platform/README.md, same order, same versions).
# Order: kube-prometheus-stack first (its CRDs back the ServiceMonitors the
# other charts create), then cert-manager, KServe, MinIO, cluster-autoscaler.

resource "random_password" "grafana_admin" {
  length  = 24
  special = false
}

resource "helm_release" "kube_prometheus_stack" {
  name       = "kube-prometheus-stack"
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "kube-prometheus-stack"
  version    = var.kube_prometheus_stack_version
  namespace  = kubernetes_namespace_v1.this["monitoring"].metadata[0].name
  timeout    = 900

  values = [file("${var.helm_values_dir}/kube-prometheus-stack.yaml")]

  set_sensitive = [{
    name  = "grafana.adminPassword"
    value = random_password.grafana_admin.result
  }]

  depends_on = [kubernetes_storage_class_v1.gp3]
}

resource "helm_release" "cert_manager" {
  name       = "cert-manager"
  repository = "https://charts.jetstack.io"
  chart      = "cert-manager"
  version    = var.cert_manager_version
  namespace  = kubernetes_namespace_v1.this["cert-manager"].metadata[0].name
  timeout    = 600

  values = [file("${var.helm_values_dir}/cert-manager.yaml")]

  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "kserve_crd" {
  name       = "kserve-crd"
  repository = "oci://ghcr.io/kserve/charts"
  chart      = "kserve-crd"
  version    = var.kserve_version
  namespace  = kubernetes_namespace_v1.this["kserve"].metadata[0].name
  timeout    = 600

  depends_on = [helm_release.cert_manager]
}

resource "helm_release" "kserve" {
  name       = "kserve"
  repository = "oci://ghcr.io/kserve/charts"
  chart      = "kserve"
  version    = var.kserve_version
  namespace  = kubernetes_namespace_v1.this["kserve"].metadata[0].name
  timeout    = 600

  values = [file("${var.helm_values_dir}/kserve.yaml")]

  # Our storage initializer (make images), from this environment's ECR.
  set = [
    {
      name  = "kserve.storage.image"
      value = aws_ecr_repository.images["storage-initializer"].repository_url
    },
    {
      name  = "kserve.storage.tag"
      value = var.image_tag
    },
  ]

  # Drops the chart's ClusterServingRuntimes and ClusterStorageContainer: they go
  # through webhooks of the controller this install is still starting, so a first
  # install fails (helm/platform/README.md, "KServe: no cluster runtimes").
  postrender = {
    binary_path = abspath("${var.helm_values_dir}/post-renderers/kserve-without-cluster-runtimes/post-render.sh")
  }

  depends_on = [helm_release.kserve_crd]
}

resource "helm_release" "minio" {
  count = local.use_minio ? 1 : 0

  name       = "minio"
  repository = "https://charts.min.io/"
  chart      = "minio"
  version    = var.minio_chart_version
  namespace  = kubernetes_namespace_v1.this["minio"].metadata[0].name
  timeout    = 600

  values = [
    file("${var.helm_values_dir}/minio.yaml"),
    # Environment-specific part: secrets and bucket are created by terraform.
    yamlencode({
      existingSecret = kubernetes_secret_v1.minio_root[0].metadata[0].name
      persistence = {
        size = var.minio_volume_size
      }
      buckets = [{
        name       = var.bucket_name
        policy     = "none"
        purge      = false
        versioning = true
      }]
      users = [{
        accessKey         = local.minio_workload_user
        existingSecret    = kubernetes_secret_v1.minio_workload_user[0].metadata[0].name
        existingSecretKey = "secretKey"
        policy            = "readwrite"
      }]
    }),
  ]

  depends_on = [helm_release.kube_prometheus_stack, kubernetes_storage_class_v1.gp3]
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = var.cluster_autoscaler_chart_version
  namespace  = "kube-system"
  timeout    = 600

  values = [file("${var.helm_values_dir}/cluster-autoscaler.yaml")]

  set = [
    {
      name  = "autoDiscovery.clusterName"
      value = var.cluster_name
    },
    {
      name  = "awsRegion"
      value = var.region
    },
    {
      name  = "image.tag"
      value = var.cluster_autoscaler_image_tag
    },
  ]

  depends_on = [aws_eks_pod_identity_association.cluster_autoscaler]
}
