module "cluster" {
  source = "../../modules/cluster"

  cluster_name       = local.cluster_name
  kubernetes_version = var.kubernetes_version

  vpc_id                   = module.network.vpc_id
  private_subnet_ids       = module.network.private_subnet_ids
  control_plane_subnet_ids = module.network.intra_subnet_ids

  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  cluster_admin_arns           = var.cluster_admin_arns

  system_node_group   = var.system_node_group
  workload_node_group = var.workload_node_group

  tags = local.tags
}
