# Remote state: S3 with native S3 locking (use_lockfile, Terraform >= 1.10;
# no DynamoDB table needed). Create the state bucket once, out of band, with
# versioning and encryption on (see README.md "0. Remote state"), then
# uncomment this block and run `terraform init -migrate-state`.
# Until then state is local (terraform.tfstate, git-ignored): it contains the
# generated MinIO and Grafana passwords, so keep it off shared disks.
#
# terraform {
#   backend "s3" {
#     bucket       = "symptom-dx-tfstate-<account-id>"
#     key          = "envs/dev/terraform.tfstate"
#     region       = "eu-west-1"
#     encrypt      = true
#     use_lockfile = true
#   }
# }
