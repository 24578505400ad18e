#!/usr/bin/python3
"""Finishes KServe's rendered manifests for this cluster (no cert-manager, no Knative/Istio).

stdin: the output of `kubectl kustomize` over KServe v0.16.0's config/ folders; stdout: YAML.
What it changes, and nothing else:
  - webhook configurations: service name/namespace (upstream fills them with kustomize
    replacements in config/default, which we do not use) and the caBundle of our own CA;
  - the CRD conversion webhook (if any) gets the same service and caBundle;
  - drops cert-manager annotations (there is no cert-manager);
  - inferenceservice-config: deploy.defaultDeploymentMode=Standard (KServe's raw deployment
    mode), no Ingress/VirtualService creation, the storage-initializer image;
  - the ClusterStorageContainer "default": the storage-initializer image.
Usage: postprocess.py NAMESPACE WEBHOOK_SERVICE CA_FILE STORAGE_INITIALIZER_IMAGE
"""

import base64
import json
import re
import sys

import yaml

# libyaml when present: KServe's CRDs are 3 MB of YAML
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def strip_json_comments(text: str) -> str:
    # KServe's ConfigMap JSON values carry '#' comment lines; drop them before parsing.
    return "\n".join(line for line in text.splitlines() if not re.match(r"^\s*#", line))


def main() -> None:
    namespace, service, ca_file, si_image = sys.argv[1:5]
    with open(ca_file, "rb") as f:
        ca_bundle = base64.b64encode(f.read()).decode()
    out = []
    for doc in yaml.load_all(sys.stdin, Loader=Loader):
        if not doc:
            continue
        kind = doc.get("kind")
        meta = doc.setdefault("metadata", {})
        ann = meta.get("annotations") or {}
        ann.pop("cert-manager.io/inject-ca-from", None)
        if ann:
            meta["annotations"] = ann
        else:
            meta.pop("annotations", None)

        if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for wh in doc.get("webhooks", []):
                cc = wh.setdefault("clientConfig", {})
                svc = cc.get("service")
                if svc is not None:
                    svc["name"] = service
                    svc["namespace"] = namespace
                cc["caBundle"] = ca_bundle
        elif kind == "CustomResourceDefinition":
            conv = (doc.get("spec") or {}).get("conversion") or {}
            if conv.get("strategy") == "Webhook":
                cc = conv.setdefault("webhook", {}).setdefault("clientConfig", {})
                if "service" in cc:
                    cc["service"]["name"] = service
                    cc["service"]["namespace"] = namespace
                cc["caBundle"] = ca_bundle
        elif kind == "ConfigMap" and meta.get("name") == "inferenceservice-config":
            data = doc["data"]
            deploy = json.loads(strip_json_comments(data["deploy"]))
            deploy["defaultDeploymentMode"] = "Standard"
            data["deploy"] = json.dumps(deploy, indent=2)
            ingress = json.loads(strip_json_comments(data["ingress"]))
            ingress["disableIngressCreation"] = True
            ingress["disableIstioVirtualHost"] = True
            data["ingress"] = json.dumps(ingress, indent=2)
            si = json.loads(strip_json_comments(data["storageInitializer"]))
            si["image"] = si_image
            data["storageInitializer"] = json.dumps(si, indent=2)
        elif kind == "ClusterStorageContainer":
            doc["spec"]["container"]["image"] = si_image
            doc["spec"]["container"]["imagePullPolicy"] = "IfNotPresent"
        out.append(doc)
    yaml.dump_all(out, sys.stdout, Dumper=Dumper, sort_keys=False, width=4096)


if __name__ == "__main__":
    main()
