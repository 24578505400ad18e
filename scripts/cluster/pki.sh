#!/usr/bin/env bash
# Makes the cluster's PKI into .state/cluster/pki (certificates with the project's helper,
# pipelines/local_stack/pki.py; the service-account key pair with openssl) and the kubeconfigs
# into .state/cluster. Idempotent: existing files are kept. Called by up.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || die "openssl not found"
[ -x "$BIN_DIR/kubectl" ] || die "kubectl not built yet (run scripts/cluster/build.sh)"
mkdir -p "$PKI_DIR"
chmod 700 "$PKI_DIR"
cd "$PKI_DIR"
umask 077
tls_ca ca symptomdx-cluster-ca
tls_ca front-proxy-ca symptomdx-front-proxy-ca

APISERVER_SANS="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
APISERVER_SANS+=",DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME"
APISERVER_SANS+=",IP:$NODE_IP,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP"
tls_cert apiserver ca "/CN=kube-apiserver" serverAuth "$APISERVER_SANS"
tls_cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
tls_cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
tls_cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
tls_cert scheduler ca "/CN=system:kube-scheduler" clientAuth
tls_cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
tls_cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
tls_cert kubelet-serving ca "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
tls_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth

if [ ! -f sa.key ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi

# kubeconfig FILE SERVER CERTNAME USER
kubeconfig() {
  local file=$1 server=$2 cert=$3 user=$4 k=("$BIN_DIR/kubectl" config --kubeconfig "$1")
  [ -f "$file" ] && return 0
  "${k[@]}" set-cluster symptomdx --server="$server" --certificate-authority="$PKI_DIR/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials "$user" --client-certificate="$PKI_DIR/$cert.crt" --client-key="$PKI_DIR/$cert.key" --embed-certs >/dev/null
  "${k[@]}" set-context "$user@symptomdx" --cluster=symptomdx --user="$user" >/dev/null
  "${k[@]}" use-context "$user@symptomdx" >/dev/null
}
LOCAL_API=https://127.0.0.1:6443 # control-plane processes talk over the node's own loopback
kubeconfig "$STATE_DIR/kubeconfig" "$APISERVER_URL" admin admin
kubeconfig "$STATE_DIR/controller-manager.kubeconfig" "$LOCAL_API" controller-manager system:kube-controller-manager
kubeconfig "$STATE_DIR/scheduler.kubeconfig" "$LOCAL_API" scheduler system:kube-scheduler
kubeconfig "$STATE_DIR/kubelet.kubeconfig" "$APISERVER_URL" kubelet-client "system:node:$NODE_NAME"
kubeconfig "$STATE_DIR/kube-proxy.kubeconfig" "$APISERVER_URL" kube-proxy system:kube-proxy
chmod 600 "$STATE_DIR"/*.kubeconfig "$STATE_DIR/kubeconfig"
