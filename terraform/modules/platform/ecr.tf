################################################################################
# Image repositories: the images `make images` builds (Dockerfile targets), pushed
# here with `make images REGISTRY=$(terraform output -raw image_registry) PUSH=1`.
# The managed node groups' role has AmazonEC2ContainerRegistryReadOnly (module
# default), so the nodes pull from them without any pull secret.
################################################################################

resource "aws_ecr_repository" "images" {
  for_each = toset(var.images)

  name = "${var.cluster_name}/${each.key}"
  # Immutable: a tag names one image for good. The manifests, the compiled pipeline
  # and KServe's storage initializer pin tags, and nodes cache by tag (IfNotPresent),
  # so a re-pushed tag would run different code on different nodes. A new build is a
  # new TAG (the version in pyproject.toml, or a suffix such as 0.1.0-<commit>).
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  # KMS with the AWS managed key aws/ecr: no key policy or grants to maintain, and
  # pulls need no KMS permission of the nodes.
  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "images" {
  for_each = aws_ecr_repository.images

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged images (interrupted or multi-platform pushes)"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        # Tags are immutable, so every build stays until this rule: keep the last
        # ones (enough to roll back to), drop older ones.
        rulePriority = 2
        description  = "Keep the 30 most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 30
        }
        action = { type = "expire" }
      },
    ]
  })
}

locals {
  # <account>.dkr.ecr.<region>.amazonaws.com/<cluster name>: REGISTRY of `make images`.
  image_registry = trimsuffix(aws_ecr_repository.images["serving"].repository_url, "/serving")
}
