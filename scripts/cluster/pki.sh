#!/usr/bin/env bash
# Makes the cluster's PKI with openssl into .state/cluster/pki and the kubeconfigs into
# .state/cluster. Idempotent: existing files are kept. Called by up.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || die "openssl not found"
[ -x "$BIN_DIR/kubectl" ] || die "kubectl not built yet (run scripts/cluster/build.sh)"
mkdir -p "$PKI_DIR"
chmod 700 "$PKI_DIR"
cd "$PKI_DIR"
umask 077
DAYS=3650

# ca NAME CN: self-signed CA
ca() {
  [ -f "$1.crt" ] && return 0
  openssl genrsa -out "$1.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$1.key" -sha256 -days "$DAYS" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$1.crt"
}

# cert NAME CA SUBJECT USAGE [SANS]: key + cert signed by CA; USAGE is clientAuth, serverAuth or both
cert() {
  local name=$1 ca=$2 subj=$3 usage=$4 sans=${5:-}
  [ -f "$name.crt" ] && return 0
  openssl genrsa -out "$name.key" 2048 2>/dev/null
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -sha256 \
    -days "$DAYS" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

ca ca symptomdx-cluster-ca
ca front-proxy-ca symptomdx-front-proxy-ca

APISERVER_SANS="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
APISERVER_SANS+=",DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME"
APISERVER_SANS+=",IP:$NODE_IP,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP"
cert apiserver ca "/CN=kube-apiserver" serverAuth "$APISERVER_SANS"
cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
cert scheduler ca "/CN=system:kube-scheduler" clientAuth
cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet-serving ca "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth

if [ ! -f sa.key ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi
rm -f ./*.srl

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
