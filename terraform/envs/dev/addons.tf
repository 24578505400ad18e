module "platform" {
  source = "../../modules/platform"

  cluster_name = module.cluster.cluster_name
  region       = var.region

  storage_backend      = var.storage_backend
  bucket_name          = local.bucket_name
  bucket_force_destroy = var.bucket_force_destroy
  minio_volume_size    = var.minio_volume_size

  helm_values_dir = "${path.root}/../../../helm/platform"

  cert_manager_version             = var.cert_manager_version
  kserve_version                   = var.kserve_version
  kube_prometheus_stack_version    = var.kube_prometheus_stack_version
  minio_chart_version              = var.minio_chart_version
  cluster_autoscaler_chart_version = var.cluster_autoscaler_chart_version
  cluster_autoscaler_image_tag     = var.cluster_autoscaler_image_tag

  image_tag        = var.image_tag
  ecr_force_delete = var.ecr_force_delete

  install_kubeflow_pipelines = var.install_kubeflow_pipelines
  kfp_version                = var.kfp_version

  tags = local.tags

  # Helm releases need schedulable nodes and the EBS CSI driver.
  depends_on = [module.cluster]
}
