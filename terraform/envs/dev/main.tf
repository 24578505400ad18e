locals {
  cluster_name = var.name
  bucket_name  = coalesce(var.bucket_name, "${var.name}-models")

  tags = merge(var.tags, {
    Project     = "symptom-dx"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}
