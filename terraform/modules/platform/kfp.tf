# Kubeflow Pipelines standalone.
#
# Upstream publishes no official Helm chart for KFP; the supported install is
# `kubectl apply -k` of the kustomize manifests at a release tag
# (kubeflow.org "Kubeflow Pipelines > Installation"). We apply exactly those
# manifests, pinned by git ref, from a local-exec: it needs `aws` and `kubectl`
# (>= 1.14, built-in kustomize) on the machine running terraform, and network
# access to github.com. env/platform-agnostic is used (no GCP application
# controller); it brings its own MySQL and artifact store in `kubeflow`.
# The `pipeline-runner` service account it creates is the one bound to the
# model bucket in iam.tf / storage.tf.
#
# kubeflow-pipelines/install.sh adds our components (the same ones the local
# cluster's install adds, scripts/cluster/kfp.sh): without the cache server
# and its deployer, whose certificate EKS never issues.

resource "terraform_data" "kubeflow_pipelines" {
  count = var.install_kubeflow_pipelines ? 1 : 0

  input = {
    cluster_name = var.cluster_name
    region       = var.region
    version      = var.kfp_version
  }

  triggers_replace = [var.kfp_version]

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      KUBECONFIG="$(mktemp)"; export KUBECONFIG
      trap 'rm -f "$KUBECONFIG"' EXIT
      aws eks update-kubeconfig --name "${self.input.cluster_name}" --region "${self.input.region}" --kubeconfig "$KUBECONFIG" >/dev/null
      bash "${path.module}/kubeflow-pipelines/install.sh" "${self.input.version}"
    EOT
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      KUBECONFIG="$(mktemp)"; export KUBECONFIG
      trap 'rm -f "$KUBECONFIG"' EXIT
      aws eks update-kubeconfig --name "${self.input.cluster_name}" --region "${self.input.region}" --kubeconfig "$KUBECONFIG" >/dev/null || exit 0
      kubectl delete -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${self.input.version}" --ignore-not-found --wait=false || true
    EOT
  }

  depends_on = [
    kubernetes_namespace_v1.this,
    kubernetes_storage_class_v1.gp3,
    helm_release.cert_manager,
  ]
}
