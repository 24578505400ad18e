"""Regenerates the Go code of Kubeflow Pipelines' protos for its backend (build.sh --with-kfp).

The backend of KFP 2.14.3 needs newer `pipelinespec` and `kubernetesplatform` Go packages than the
`api` / `kubernetes_platform` module versions its go.mod requires (upstream replaces both with
its own folders, which are not in the module zip). The matching protos ship, compiled, in PyPI's
`kfp-pipeline-spec` and `kfp-kubernetes` wheels of the same release: each `_pb2` module carries
its serialized FileDescriptorProto. This script builds a protoc plugin request from them (the
file plus its dependencies, dependencies first) and pipes it into protoc-gen-go, so no protoc
and no .proto sources are needed.

Usage: genproto.py PROTOC_GEN_GO OUT_DIR
Writes OUT_DIR/api/v2alpha1/go/pipelinespec/pipeline_spec.pb.go and
OUT_DIR/kubernetes_platform/go/kubernetesplatform/kubernetes_executor_config.pb.go.
Run it with a Python that has kfp-pipeline-spec, kfp-kubernetes (installed with --no-deps),
protobuf and googleapis-common-protos installed (build.sh makes that venv).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import kfp.pipeline_spec.pipeline_spec_pb2 as pipeline_spec_pb2
from google.protobuf import descriptor, descriptor_pb2
from google.protobuf.compiler import plugin_pb2


def load_kubernetes_pb2() -> ModuleType:
    # kfp/kubernetes/__init__.py imports the kfp SDK, which is not installed: load the generated
    # module alone, by path (it only imports protobuf and kfp.pipeline_spec).
    spec = importlib.util.find_spec("kfp.pipeline_spec")  # same site-packages
    site = Path(spec.submodule_search_locations[0]).parent
    path = site / "kubernetes" / "kubernetes_executor_config_pb2.py"
    mod_spec = importlib.util.spec_from_file_location("kubernetes_executor_config_pb2", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def closure(
    file_descriptor: descriptor.FileDescriptor,
    seen: set[str],
    ordered: list[descriptor_pb2.FileDescriptorProto],
) -> None:
    """Appends file_descriptor's dependencies, then itself, to ordered (topological order)."""
    if file_descriptor.name in seen:
        return
    seen.add(file_descriptor.name)
    for dep in file_descriptor.dependencies:
        closure(dep, seen, ordered)
    ordered.append(descriptor_pb2.FileDescriptorProto.FromString(file_descriptor.serialized_pb))


def generate(
    protoc_gen_go: str, file_descriptor: descriptor.FileDescriptor, out_file: Path
) -> None:
    ordered = []
    closure(file_descriptor, set(), ordered)
    request = plugin_pb2.CodeGeneratorRequest(
        file_to_generate=[file_descriptor.name],
        parameter="paths=source_relative",
        proto_file=ordered,
    )
    result = subprocess.run(
        [protoc_gen_go], input=request.SerializeToString(), capture_output=True, check=True
    )
    response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
    if response.error:
        sys.exit(f"protoc-gen-go: {response.error}")
    files = {f.name: f.content for f in response.file}
    want = file_descriptor.name.removesuffix(".proto") + ".pb.go"
    if list(files) != [want]:
        sys.exit(f"protoc-gen-go returned {list(files)}, expected [{want}]")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(files[want])
    print(f"genproto: {file_descriptor.name} -> {out_file}")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    protoc_gen_go, out = sys.argv[1], Path(sys.argv[2])
    if not os.access(protoc_gen_go, os.X_OK):
        sys.exit(f"not executable: {protoc_gen_go}")
    kubernetes_pb2 = load_kubernetes_pb2()
    generate(
        protoc_gen_go,
        pipeline_spec_pb2.DESCRIPTOR,
        out / "api/v2alpha1/go/pipelinespec/pipeline_spec.pb.go",
    )
    generate(
        protoc_gen_go,
        kubernetes_pb2.DESCRIPTOR,
        out / "kubernetes_platform/go/kubernetesplatform/kubernetes_executor_config.pb.go",
    )


if __name__ == "__main__":
    main()
