#!/usr/bin/env python3
"""Runs the two images of images.sh for real, on 127.0.0.1 only, and checks them.

    python3 scripts/cluster/kfp/check_images.py [--mariadb-image REF] [--mlmd-image REF]

Needs only python3 and a Docker engine (containers use --network host, every server binds
127.0.0.1 on a free port). Steps:
  1. localhost/symptomdx/mariadb with the args of KFP's third-party/mysql Deployment
     (plus --bind-address/--port) on a fresh volume; SQL over TCP as root with no password.
  2. localhost/symptomdx/mlmd-server with the args of KFP's metadata-grpc-deployment (plus
     --grpc_host and --grpc_web_port); a gRPC client (run in the MLMD image, which has the
     protos) makes the calls Kubeflow Pipelines' driver and launcher make, as they make them,
     put then get.
  3. grpc-web, as KFP's dashboard reads ML Metadata (the browser's grpc-web client, mode=grpcweb,
     through the UI server's proxy): after puts over gRPC, each method the dashboard uses, POSTed
     over HTTP/1.1 with the browser's headers, answers what gRPC answers (frames decoded, trailer
     grpc-status 0); errors are HTTP 200 with the gRPC code in the trailer.
  4. SIGTERM: both stop promptly; after restarts of both (same volume), the data is there and
     the MLMD server answers again (gRPC and grpc-web) without a restart of its own.
Every container and the volume are removed at the end. Exits non-zero on any failure; the last
line is "N passed, M failed".
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

MARIADB_IMAGE = "localhost/symptomdx/mariadb:10.11"
MLMD_IMAGE = "localhost/symptomdx/mlmd-server:1.17.1"


# --- the clients, run inside the MLMD image (python3 - client HOST PORT TOKEN PHASE WEB_PORT) --

# The methods KFP 2.14's dashboard calls over grpc-web (frontend/src/lib/MlmdUtils.ts & co.).
UI_METHODS = (
    "GetArtifactTypes", "GetArtifactTypesByID", "GetArtifacts", "GetArtifactsByContext",
    "GetArtifactsByID", "GetContextByTypeAndName", "GetContextType", "GetContextsByExecution",
    "GetEventsByArtifactIDs", "GetEventsByExecutionIDs", "GetExecutionTypes", "GetExecutions",
    "GetExecutionsByContext", "GetExecutionsByID",
)  # fmt: skip


class WebAnswer:
    """A grpc-web answer: HTTP status and headers, message frames, trailer fields."""

    def __init__(self, status: int, version: int, content_type: str, body: bytes) -> None:
        self.status, self.version, self.content_type = status, version, content_type
        self.messages: list[bytes] = []
        self.trailers: dict[str, str] = {}
        self.error = ""
        while body:
            if len(body) < 5:
                self.error = f"{len(body)} stray bytes after the frames"
                return
            flags, size = struct.unpack(">BI", body[:5])
            data, body = body[5 : 5 + size], body[5 + size :]
            if len(data) != size:
                self.error = f"frame of {size} bytes cut at {len(data)}"
            elif flags == 0 and not self.trailers:
                self.messages.append(data)
            elif flags == 0x80 and not body:
                for line in data.decode("ascii").split("\r\n"):
                    if line:
                        key, _, value = line.partition(":")
                        self.trailers[key.strip().lower()] = value.strip()
            else:
                self.error = f"unexpected frame (flags {flags:#x})"

    def ok(self) -> bool:
        return (
            self.status == 200
            and self.content_type.startswith("application/grpc-web")
            and not self.error
            and self.trailers.get("grpc-status") == "0"
            and len(self.messages) == 1
        )

    def __repr__(self) -> str:
        return (
            f"HTTP/{self.version / 10} {self.status} {self.content_type!r} "
            f"{len(self.messages)} message(s), trailers {self.trailers}"
            f"{', ' + self.error if self.error else ''}"
        )


def grpc_web_call(conn: Any, method: str, request: Any, text: bool = False) -> WebAnswer:
    """One call as the dashboard's browser makes it (grpc-web 1.x: binary mode, or text)."""
    body = request.SerializeToString()
    body = struct.pack(">BI", 0, len(body)) + body
    headers = {
        "Content-Type": "application/grpc-web+proto",
        "Accept": "*/*",  # the browser's default: grpc-web sets none in binary mode
        "X-Grpc-Web": "1",
        "X-User-Agent": "grpc-web-javascript/0.1",
        "Origin": "http://localhost:3000",
    }
    if text:
        body = base64.b64encode(body)
        headers["Content-Type"] = headers["Accept"] = "application/grpc-web-text"
    conn.request("POST", f"/ml_metadata.MetadataStoreService/{method}", body, headers)
    res = conn.getresponse()
    data = res.read()
    content_type = res.getheader("Content-Type", "")
    if text:
        data = base64.b64decode(data)
    return WebAnswer(res.status, res.version, content_type, data)


def web_client(host: str, port: int, web_port: int, token: str, phase: str) -> int:
    """The dashboard's MLMD calls over grpc-web on host:web_port, compared with gRPC's answers
    on host:port (puts go over gRPC); prints one line per check."""
    import http.client

    import grpc
    from ml_metadata.proto import metadata_store_pb2 as md
    from ml_metadata.proto import metadata_store_service_pb2 as ms
    from ml_metadata.proto import metadata_store_service_pb2_grpc as ms_grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = ms_grpc.MetadataStoreServiceStub(channel)
    conn = http.client.HTTPConnection(host, web_port, timeout=30)  # one, kept alive
    results = {"passed": 0, "failed": 0}

    def check(what: str, ok: bool, detail: object = "") -> None:
        results["passed" if ok else "failed"] += 1
        print(f"{'ok  ' if ok else 'FAIL'} grpc-web: {what}{'' if ok else f': {detail}'}")

    if phase == "web-verify":  # after restarts: what the gRPC phase wrote, over grpc-web
        req = ms.GetContextByTypeAndNameRequest(
            type_name="system.PipelineRun", context_name=f"check-run-{token}"
        )
        web = grpc_web_call(conn, "GetContextByTypeAndName", req)
        got = ms.GetContextByTypeAndNameResponse.FromString(web.messages[0]) if web.ok() else None
        check(
            "after restarts: the run context",
            got is not None and got.context.name.endswith(token),
            web,
        )
        print(f"{results['passed']} passed, {results['failed']} failed")
        return 1 if results["failed"] else 0

    # Puts over gRPC: types, a run context, an execution with an output artifact.
    name = f"check-web-{token}"
    art_type = stub.PutArtifactType(
        ms.PutArtifactTypeRequest(artifact_type=md.ArtifactType(name=f"check.web.Model-{token}"))
    ).type_id
    ctx_type = stub.PutContextType(
        ms.PutContextTypeRequest(context_type=md.ContextType(name="check.web.Run"))
    ).type_id
    exec_type = stub.PutExecutionType(
        ms.PutExecutionTypeRequest(execution_type=md.ExecutionType(name="check.web.Task"))
    ).type_id
    ctx = md.Context(name=name, type_id=ctx_type)
    ctx.id = stub.PutContexts(ms.PutContextsRequest(contexts=[ctx])).context_ids[0]
    put = stub.PutExecution(
        ms.PutExecutionRequest(
            execution=md.Execution(type_id=exec_type, last_known_state=md.Execution.COMPLETE),
            contexts=[ctx],
            artifact_event_pairs=[
                ms.PutExecutionRequest.ArtifactAndEvent(
                    artifact=md.Artifact(type_id=art_type, uri=f"minio://check/{name}"),
                    event=md.Event(type=md.Event.OUTPUT),
                )
            ],
        )
    )
    exec_id, art_id = put.execution_id, put.artifact_ids[0]

    # The two calls of the brief, in detail.
    web = grpc_web_call(conn, "GetArtifactTypes", ms.GetArtifactTypesRequest())
    types = ms.GetArtifactTypesResponse.FromString(web.messages[0]) if web.ok() else None
    check(
        "GetArtifactTypes: HTTP/1.1 200, one message, trailer grpc-status: 0, the type put",
        web.ok() and web.version == 11 and types is not None
        and any(t.id == art_type and t.name.endswith(token) for t in types.artifact_types),
        web,
    )  # fmt: skip
    check(
        "Content-Type the browser's client accepts",
        web.content_type == "application/grpc-web+proto",
        web.content_type,
    )
    req = ms.GetContextByTypeAndNameRequest(type_name="check.web.Run", context_name=name)
    web = grpc_web_call(conn, "GetContextByTypeAndName", req)
    got = ms.GetContextByTypeAndNameResponse.FromString(web.messages[0]) if web.ok() else None
    check(
        "GetContextByTypeAndName: the context put over gRPC",
        got is not None and got.context.id == ctx.id and got.context.name == name,
        web,
    )
    missing = ms.GetContextByTypeAndNameRequest(type_name="check.web.Run", context_name="none")
    web = grpc_web_call(conn, "GetContextByTypeAndName", missing)
    check(
        "GetContextByTypeAndName of no context: OK with an empty message frame (not none)",
        web.ok() and web.messages == [b""],
        web,
    )

    # Every method the dashboard uses: the grpc-web answer is the gRPC answer.
    requests: dict[str, Any] = {
        "GetArtifactTypes": ms.GetArtifactTypesRequest(),
        "GetArtifactTypesByID": ms.GetArtifactTypesByIDRequest(type_ids=[art_type]),
        "GetArtifacts": ms.GetArtifactsRequest(),
        "GetArtifactsByContext": ms.GetArtifactsByContextRequest(context_id=ctx.id),
        "GetArtifactsByID": ms.GetArtifactsByIDRequest(artifact_ids=[art_id]),
        "GetContextByTypeAndName": req,
        "GetContextType": ms.GetContextTypeRequest(type_name="check.web.Run"),
        "GetContextsByExecution": ms.GetContextsByExecutionRequest(execution_id=exec_id),
        "GetEventsByArtifactIDs": ms.GetEventsByArtifactIDsRequest(artifact_ids=[art_id]),
        "GetEventsByExecutionIDs": ms.GetEventsByExecutionIDsRequest(execution_ids=[exec_id]),
        "GetExecutionTypes": ms.GetExecutionTypesRequest(),
        "GetExecutions": ms.GetExecutionsRequest(),
        "GetExecutionsByContext": ms.GetExecutionsByContextRequest(context_id=ctx.id),
        "GetExecutionsByID": ms.GetExecutionsByIDRequest(execution_ids=[exec_id]),
    }
    differ = []
    for method in UI_METHODS:
        expected = getattr(stub, method)(requests[method], timeout=30)
        web = grpc_web_call(conn, method, requests[method])
        if not web.ok() or type(expected).FromString(web.messages[0]) != expected:
            differ.append(f"{method}: {web}")
    check(f"the dashboard's {len(UI_METHODS)} methods answer as over gRPC", not differ, differ)
    web = grpc_web_call(conn, "GetArtifactTypes", ms.GetArtifactTypesRequest(), text=True)
    check(
        "application/grpc-web-text (base64) answers the same",
        web.ok()
        and web.content_type.startswith("application/grpc-web-text")
        and ms.GetArtifactTypesResponse.FromString(web.messages[0])
        == stub.GetArtifactTypes(ms.GetArtifactTypesRequest()),
        web,
    )

    # Errors: HTTP 200, no message, the gRPC code in the trailer (with grpc-message).
    def grpc_code(method: str, request: Any) -> int:
        try:
            getattr(stub, method)(request, timeout=30)
        except grpc.RpcError as e:
            return int(e.code().value[0])  # type: ignore[attr-defined]
        return 0

    for method, request, want in (
        ("GetContextType", ms.GetContextTypeRequest(type_name=f"check.web.none-{token}"), 5),
        ("GetLineageGraph", ms.GetLineageGraphRequest(), 12),
    ):
        web = grpc_web_call(conn, method, request)
        check(
            f"{method}: HTTP 200, trailer grpc-status: {want} as over gRPC, with grpc-message",
            web.status == 200
            and not web.messages
            and not web.error
            and web.trailers.get("grpc-status") == str(want) == str(grpc_code(method, request))
            and bool(web.trailers.get("grpc-message")),
            web,
        )
    conn.close()
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


def client(host: str, port: int, token: str, phase: str) -> int:
    """Makes KFP's MLMD calls against host:port; prints one line per check."""
    import threading

    import grpc
    from google.protobuf import struct_pb2
    from ml_metadata.proto import metadata_store_pb2 as md
    from ml_metadata.proto import metadata_store_service_pb2 as ms
    from ml_metadata.proto import metadata_store_service_pb2_grpc as ms_grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = ms_grpc.MetadataStoreServiceStub(channel)
    used: set[str] = set()
    results = {"passed": 0, "failed": 0}

    def call(name: str, request: Any) -> Any:
        used.add(name)
        return getattr(stub, name)(request, timeout=30)

    def code_of(name: str, request: Any) -> grpc.StatusCode:
        try:
            call(name, request)
        except grpc.RpcError as e:
            return e.code()  # type: ignore[no-any-return, attr-defined]
        return grpc.StatusCode.OK

    def check(what: str, ok: bool, detail: object = "") -> None:
        results["passed" if ok else "failed"] += 1
        print(f"{'ok  ' if ok else 'FAIL'} {what}{'' if ok else f': {detail}'}", flush=True)

    def sval(s: str) -> md.Value:
        return md.Value(string_value=s)

    def ival(i: int) -> md.Value:
        return md.Value(int_value=i)

    pipeline_name = f"check-pipeline-{token}"
    run_name = f"check-run-{token}"

    if phase == "verify":
        # After restarts: what the first phase wrote is still there.
        res = call(
            "GetContextByTypeAndName",
            ms.GetContextByTypeAndNameRequest(
                type_name="system.PipelineRun", context_name=run_name
            ),
        )
        check("after restarts: run context still there", res.context.name == run_name, res)
        execs = call(
            "GetExecutionsByContext", ms.GetExecutionsByContextRequest(context_id=res.context.id)
        ).executions
        check("after restarts: its executions still there", len(execs) >= 2, len(execs))
        print(f"{results['passed']} passed, {results['failed']} failed")
        return 1 if results["failed"] else 0

    # Types, as getContextTypeID / getExecutionTypeID / GetOrInsertArtifactType make them.
    ctx_types: dict[str, int] = {}
    for name in ("system.Pipeline", "system.PipelineRun"):
        code = code_of("GetContextType", ms.GetContextTypeRequest(type_name=name))
        check(
            f"GetContextType {name} on a new store: NOT_FOUND",
            code == grpc.StatusCode.NOT_FOUND,
            code,
        )
        ctx_types[name] = call(
            "PutContextType", ms.PutContextTypeRequest(context_type=md.ContextType(name=name))
        ).type_id
        got = call("GetContextType", ms.GetContextTypeRequest(type_name=name)).context_type
        check(f"PutContextType then GetContextType {name}", got.id == ctx_types[name], got)
    exec_types = {
        name: call(
            "PutExecutionType",
            ms.PutExecutionTypeRequest(execution_type=md.ExecutionType(name=name)),
        ).type_id
        for name in ("system.DAGExecution", "system.ContainerExecution")
    }
    again = call(
        "PutExecutionType",
        ms.PutExecutionTypeRequest(execution_type=md.ExecutionType(name="system.DAGExecution")),
    ).type_id
    check("PutExecutionType is idempotent", again == exec_types["system.DAGExecution"], again)
    code = code_of("GetArtifactType", ms.GetArtifactTypeRequest(type_name="system.Model"))
    check(
        "GetArtifactType system.Model on a new store: NOT_FOUND", code == grpc.StatusCode.NOT_FOUND
    )
    art_types: dict[str, int] = {}
    for name in ("system.Model", "system.Dataset"):
        art_types[name] = call(
            "PutArtifactType", ms.PutArtifactTypeRequest(artifact_type=md.ArtifactType(name=name))
        ).type_id
        got = call("GetArtifactType", ms.GetArtifactTypeRequest(type_name=name)).artifact_type
        check(f"PutArtifactType then GetArtifactType {name}", got.id == art_types[name], got)

    # GetPipeline: getOrInsertContext for the pipeline and the run, then the parent link.
    def get_or_insert(type_name: str, name: str, props: dict[str, md.Value]) -> md.Context:
        req = ms.GetContextByTypeAndNameRequest(type_name=type_name, context_name=name)
        got = call("GetContextByTypeAndName", req)
        check(f"GetContextByTypeAndName {type_name} before: none", not got.HasField("context"))
        ctx = md.Context(name=name, type_id=ctx_types[type_name], custom_properties=props)
        call("PutContexts", ms.PutContextsRequest(contexts=[ctx]))
        code = code_of("PutContexts", ms.PutContextsRequest(contexts=[ctx]))
        check(
            f"PutContexts {type_name} twice: ALREADY_EXISTS", code == grpc.StatusCode.ALREADY_EXISTS
        )
        got = call("GetContextByTypeAndName", req).context
        check(f"PutContexts then GetContextByTypeAndName {type_name}", got.name == name, got)
        return got  # type: ignore[no-any-return]

    pipeline = get_or_insert("system.Pipeline", pipeline_name, {})
    run = get_or_insert(
        "system.PipelineRun",
        run_name,
        {
            "namespace": sval("kubeflow"),
            "resource_name": sval(f"run-{token}"),
            "pipeline_root": sval(f"minio://mlpipeline/v2/artifacts/{pipeline_name}/{token}"),
            "store_session_info": sval('{"Provider":"minio","Params":{}}'),
        },
    )
    parents = call(
        "GetParentContextsByContext", ms.GetParentContextsByContextRequest(context_id=run.id)
    ).contexts
    check("GetParentContextsByContext before: none", len(parents) == 0, parents)
    link = md.ParentContext(child_id=run.id, parent_id=pipeline.id)
    call("PutParentContexts", ms.PutParentContextsRequest(parent_contexts=[link]))
    code = code_of("PutParentContexts", ms.PutParentContextsRequest(parent_contexts=[link]))
    check("PutParentContexts twice: ALREADY_EXISTS", code == grpc.StatusCode.ALREADY_EXISTS, code)
    parents = call(
        "GetParentContextsByContext", ms.GetParentContextsByContextRequest(context_id=run.id)
    ).contexts
    check(
        "PutParentContexts then GetParentContextsByContext",
        [c.id for c in parents] == [pipeline.id],
        parents,
    )
    got = call("GetContextsByID", ms.GetContextsByIDRequest(context_ids=[run.id])).contexts
    check(
        "GetContextsByID (custom properties kept)",
        len(got) == 1 and got[0].custom_properties["namespace"].string_value == "kubeflow",
        got,
    )

    # CreateExecution: the root DAG, then a container task in it, then GetExecutionsByID.
    def create_execution(type_name: str, task: str, extra: dict[str, md.Value]) -> md.Execution:
        inputs = struct_pb2.Struct()
        inputs.update({"epochs": 3, "lr": 0.1, "name": task})
        props = {
            "display_name": sval(task),
            "task_name": sval(task),
            "inputs": md.Value(struct_value=inputs),
            **extra,
        }
        ex = md.Execution(
            type_id=exec_types[type_name],
            last_known_state=md.Execution.RUNNING,
            custom_properties=props,
        )
        res = call("PutExecution", ms.PutExecutionRequest(execution=ex, contexts=[pipeline, run]))
        got = call(
            "GetExecutionsByID", ms.GetExecutionsByIDRequest(execution_ids=[res.execution_id])
        ).executions
        check(
            f"PutExecution then GetExecutionsByID ({type_name})",
            len(got) == 1 and got[0].custom_properties["inputs"].struct_value == inputs,
            got,
        )
        return got[0]  # type: ignore[no-any-return]

    dag = create_execution("system.DAGExecution", "root", {})
    task = create_execution(
        "system.ContainerExecution",
        "train",
        {
            "parent_dag_id": ival(dag.id),
            "pod_name": sval("train-pod"),
            "namespace": sval("kubeflow"),
            "image": sval("localhost/symptomdx/components:0.1.0"),
            "cache_fingerprint": sval(f"fp-{token}"),
        },
    )

    # PublishExecution: COMPLETE, outputs, a new output artifact with its OUTPUT event.
    uri = f"minio://mlpipeline/v2/artifacts/{pipeline_name}/{token}/train/model"
    model = md.Artifact(
        type_id=art_types["system.Model"],
        uri=uri,
        state=md.Artifact.LIVE,
        custom_properties={"display_name": sval("model"), "framework": sval("sklearn")},
    )
    outputs = struct_pb2.Struct()
    outputs.update({"accuracy": 0.93})
    task.last_known_state = md.Execution.COMPLETE
    task.custom_properties["outputs"].struct_value.CopyFrom(outputs)
    event = md.Event(
        type=md.Event.OUTPUT, path=md.Event.Path(steps=[md.Event.Path.Step(key="model")])
    )
    res = call(
        "PutExecution",
        ms.PutExecutionRequest(
            execution=task,
            contexts=[pipeline, run],
            artifact_event_pairs=[
                ms.PutExecutionRequest.ArtifactAndEvent(artifact=model, event=event)
            ],
        ),
    )
    check("PutExecution (publish) returns the artifact", len(res.artifact_ids) == 1, res)
    model_id = res.artifact_ids[0]
    got = call(
        "GetExecutionsByID", ms.GetExecutionsByIDRequest(execution_ids=[task.id])
    ).executions[0]
    check(
        "published execution: COMPLETE with outputs",
        got.last_known_state == md.Execution.COMPLETE
        and got.custom_properties["outputs"].struct_value == outputs,
        got,
    )

    # GetExecutionsInDAG: the run's executions, filtered by parent_dag_id (MLMD's filter SQL).
    # Pages of 20 (MLMD's default), followed by next_page_token as KFP does.
    def in_run(filter_query: str) -> list[int]:
        ids: list[int] = []
        page = ""
        while True:
            options = md.ListOperationOptions(filter_query=filter_query, next_page_token=page)
            req = ms.GetExecutionsByContextRequest(context_id=run.id, options=options)
            res = call("GetExecutionsByContext", req)
            ids += [e.id for e in res.executions]
            page = res.next_page_token
            if not page:
                return ids

    check("GetExecutionsByContext (all)", sorted(in_run("")) == sorted([dag.id, task.id]))
    only = in_run(f"custom_properties.parent_dag_id.int_value = {dag.id}")
    check("GetExecutionsByContext with parent_dag_id filter", only == [task.id], only)
    ctxs = call(
        "GetContextsByExecution", ms.GetContextsByExecutionRequest(execution_id=task.id)
    ).contexts
    check(
        "GetContextsByExecution", sorted(c.id for c in ctxs) == sorted([pipeline.id, run.id]), ctxs
    )
    events = call(
        "GetEventsByExecutionIDs", ms.GetEventsByExecutionIDsRequest(execution_ids=[task.id])
    ).events
    check(
        "GetEventsByExecutionIDs: the OUTPUT event",
        len(events) == 1
        and events[0].artifact_id == model_id
        and events[0].type == md.Event.OUTPUT
        and events[0].path.steps[0].key == "model",
        events,
    )

    # The launcher's and the cache's artifact look-ups.
    arts = call("GetArtifactsByID", ms.GetArtifactsByIDRequest(artifact_ids=[model_id])).artifacts
    check(
        "GetArtifactsByID",
        len(arts) == 1
        and arts[0].uri == uri
        and arts[0].custom_properties["framework"].string_value == "sklearn",
        arts,
    )
    arts = call("GetArtifactsByURI", ms.GetArtifactsByURIRequest(uris=[uri])).artifacts
    check("GetArtifactsByURI", [a.id for a in arts] == [model_id], arts)
    ctxs = call("GetContextsByArtifact", ms.GetContextsByArtifactRequest(artifact_id=model_id))
    check(
        "GetContextsByArtifact (attributed by PutExecution)",
        sorted(c.id for c in ctxs.contexts) == sorted([pipeline.id, run.id]),
        ctxs,
    )
    events = call(
        "GetEventsByArtifactIDs", ms.GetEventsByArtifactIDsRequest(artifact_ids=[model_id])
    ).events
    check("GetEventsByArtifactIDs", [e.execution_id for e in events] == [task.id], events)

    # The rest of the write API: PutArtifacts, attributions/associations, PutEvents.
    ext_id = f"dataset-{token}"
    dataset = md.Artifact(
        type_id=art_types["system.Dataset"],
        uri=f"minio://mlpipeline/data/{token}.csv",
        external_id=ext_id,
        state=md.Artifact.LIVE,
    )
    ds_id = call("PutArtifacts", ms.PutArtifactsRequest(artifacts=[dataset])).artifact_ids[0]
    arts = call(
        "GetArtifactsByExternalIds", ms.GetArtifactsByExternalIdsRequest(external_ids=[ext_id])
    ).artifacts
    check("PutArtifacts then GetArtifactsByExternalIds", [a.id for a in arts] == [ds_id], arts)
    call(
        "PutAttributionsAndAssociations",
        ms.PutAttributionsAndAssociationsRequest(
            attributions=[md.Attribution(artifact_id=ds_id, context_id=run.id)],
            associations=[md.Association(execution_id=dag.id, context_id=run.id)],
        ),
    )
    arts = call("GetArtifactsByContext", ms.GetArtifactsByContextRequest(context_id=run.id))
    check(
        "PutAttributionsAndAssociations then GetArtifactsByContext",
        sorted(a.id for a in arts.artifacts) == sorted([model_id, ds_id]),
        arts,
    )
    call(
        "PutEvents",
        ms.PutEventsRequest(
            events=[md.Event(artifact_id=ds_id, execution_id=task.id, type=md.Event.INPUT)]
        ),
    )
    events = call(
        "GetEventsByExecutionIDs", ms.GetEventsByExecutionIDsRequest(execution_ids=[task.id])
    ).events
    check(
        "PutEvents then GetEventsByExecutionIDs",
        sorted((e.artifact_id, e.type) for e in events)
        == sorted([(model_id, md.Event.OUTPUT), (ds_id, md.Event.INPUT)]),
        events,
    )

    # Errors keep their codes (KFP's client retries ABORTED and reads NOT_FOUND/ALREADY_EXISTS).
    bad = md.Execution(type_id=999_999, last_known_state=md.Execution.RUNNING)
    code = code_of("PutExecution", ms.PutExecutionRequest(execution=bad))
    check("PutExecution with an unknown type: an error code", code != grpc.StatusCode.OK, code)
    code = code_of("GetLineageGraph", ms.GetLineageGraphRequest())
    check("GetLineageGraph: UNIMPLEMENTED", code == grpc.StatusCode.UNIMPLEMENTED, code)

    # Parallel drivers: 8 threads x 10 executions, each put then got.
    errors: list[str] = []

    def worker(n: int) -> None:
        for i in range(10):
            try:
                ex = md.Execution(
                    type_id=exec_types["system.ContainerExecution"],
                    last_known_state=md.Execution.RUNNING,
                    custom_properties={
                        "parent_dag_id": ival(dag.id),
                        "task_name": sval(f"{n}-{i}"),
                    },
                )
                eid = stub.PutExecution(
                    ms.PutExecutionRequest(execution=ex, contexts=[pipeline, run]), timeout=60
                ).execution_id
                got = stub.GetExecutionsByID(
                    ms.GetExecutionsByIDRequest(execution_ids=[eid]), timeout=60
                ).executions
                if got[0].custom_properties["task_name"].string_value != f"{n}-{i}":
                    errors.append(f"{n}-{i}: {got}")
            except grpc.RpcError as e:
                errors.append(f"{n}-{i}: {e.code()} {e.details()}")  # type: ignore[attr-defined]

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    check(f"80 concurrent PutExecution+GetExecutionsByID in {took:.1f} s", not errors, errors[:3])
    count = len(in_run(f"custom_properties.parent_dag_id.int_value = {dag.id}"))
    check("GetExecutionsByContext, paged and filtered, sees all 81 tasks", count == 81, count)

    print(f"RPCs exercised ({len(used)}): {', '.join(sorted(used))}")
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


# --- the orchestration, on the host -----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker(*args: str, check: bool = True, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout + proc.stderr


def wait_for(what: str, ready: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if ready():
            return time.monotonic() - start
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready within {timeout:.0f} s")


def running(name: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", name, check=False).strip() == "true"


def stop_timed(name: str) -> float:
    start = time.monotonic()
    docker("stop", "-t", "30", name)
    return time.monotonic() - start


def main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mariadb-image", default=MARIADB_IMAGE)
    ap.add_argument("--mlmd-image", default=MLMD_IMAGE)
    args = ap.parse_args(argv)

    tag = f"kfpcheck-{os.getpid()}"
    db, mlmd, volume = f"{tag}-mariadb", f"{tag}-mlmd", f"{tag}-data"
    db_port, grpc_port, web_port = free_port(), free_port(), free_port()
    passed = failed = 0

    def check(what: str, ok: bool, detail: object = "") -> None:
        nonlocal passed, failed
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'ok  ' if ok else 'FAIL'} {what}{'' if ok else f': {detail}'}", flush=True)

    # KFP's third-party/mysql Deployment: env and args as there, plus loopback and a free port.
    db_run = [
        "run", "-d", "--name", db, "--network", "host", "-v", f"{volume}:/var/lib/mysql",
        "-e", "MYSQL_ALLOW_EMPTY_PASSWORD=true", args.mariadb_image,
        "--datadir", "/var/lib/mysql", "--authentication-policy=mysql_native_password",
        "--mysql-native-password=ON", "--disable-log-bin",
        "--bind-address=127.0.0.1", f"--port={db_port}",
    ]  # fmt: skip
    # KFP's metadata-grpc-deployment: command and args as there (after the env substitution
    # of the generic install's config: metadb, root, empty password), plus --grpc_host and the
    # grpc-web listener (metadata-envoy-service's stand-in).
    mlmd_run = [
        "run", "-d", "--name", mlmd, "--network", "host", "--user", "1000:0",
        "--entrypoint", "/bin/metadata_store_server", args.mlmd_image,
        f"--grpc_port={grpc_port}", "--mysql_config_database=metadb",
        "--mysql_config_host=127.0.0.1", f"--mysql_config_port={db_port}",
        "--mysql_config_user=root", "--mysql_config_password=",
        "--enable_database_upgrade=true",
        "--grpc_channel_arguments=grpc.max_metadata_size=16384",
        "--grpc_host=127.0.0.1", f"--grpc_web_port={web_port}",
    ]  # fmt: skip
    sql = ["exec", db, "mariadb", "-h127.0.0.1", f"-P{db_port}", "-uroot", "--batch", "-N", "-e"]

    def db_ready() -> bool:
        if not running(db):
            raise RuntimeError(f"{db} exited:\n{docker('logs', db, check=False)[-3000:]}")
        out = docker(*sql, "SELECT 1", check=False)
        return out.strip() == "1"

    def mlmd_ready() -> bool:
        if not running(mlmd):
            raise RuntimeError(f"{mlmd} exited:\n{docker('logs', mlmd, check=False)[-3000:]}")
        return "Server listening" in docker("logs", mlmd, check=False)

    def run_client(phase: str) -> tuple[int, str]:
        with open(__file__, encoding="utf-8") as f:
            source = f.read()
        proc = subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "host", "--entrypoint",
             "/opt/venv/bin/python", args.mlmd_image, "-", "client", "127.0.0.1",
             str(grpc_port), tag, phase, str(web_port)],
            input=source, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return proc.returncode, proc.stdout + proc.stderr

    try:
        print(f"mariadb {args.mariadb_image} on 127.0.0.1:{db_port}; "
              f"mlmd {args.mlmd_image} on 127.0.0.1:{grpc_port}, grpc-web {web_port}")  # fmt: skip
        docker(*db_run)
        took = wait_for("mariadb", db_ready, 120)
        check(f"mariadb: first start (datadir initialized) and ready in {took:.1f} s", True)
        who = docker(*sql, "SELECT CURRENT_USER(), @@version, @@log_bin").split()
        check("mariadb: root over TCP with no password is root@'%'", who[:1] == ["root@%"], who)
        out = docker(
            *sql,
            "CREATE DATABASE mlpipeline; CREATE DATABASE cachedb; "
            "CREATE TABLE mlpipeline.t (UUID varchar(64) NOT NULL PRIMARY KEY, "
            "Name varchar(255), Payload longtext, CreatedAtInSec bigint NOT NULL, "
            "INDEX idx (Name, CreatedAtInSec)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4; "
            "INSERT INTO mlpipeline.t VALUES ('u1', 'n', REPEAT('x', 100000), 1); "
            "SELECT COUNT(*), LENGTH(Payload) FROM mlpipeline.t; SHOW DATABASES;",
            check=False,
        )
        check(
            "mariadb: databases, a utf8mb4 table with an index, a 100 kB row",
            "1\t100000" in out and "cachedb" in out and "lost+found" not in out,
            out,
        )
        docker(*mlmd_run)
        took = wait_for("mlmd server", mlmd_ready, 90)
        check(f"mlmd: schema created and serving in {took:.1f} s", True)
        rc, out = run_client("put-get")
        print(out.rstrip())
        passed += out.count("\nok  ") + out.startswith("ok  ")
        failed += out.count("\nFAIL") + out.startswith("FAIL")
        check("mlmd: client exited 0", rc == 0, rc)
        rc, out = run_client("web")
        print(out.rstrip())
        passed += out.count("\nok  ") + out.startswith("ok  ")
        failed += out.count("\nFAIL") + out.startswith("FAIL")
        check("mlmd: grpc-web client exited 0", rc == 0, rc)
        lines = docker("logs", mlmd).splitlines()
        starts = [ln for ln in lines if "Server listening" in ln]
        check("mlmd: one start line", len(starts) == 1, lines)
        print(f"     {starts[0] if starts else ''}")
        payload = [
            ln
            for ln in lines
            if any(w in ln for w in ("sklearn", "kubeflow", "check-", "check.web"))
        ]
        check("mlmd: no request payload in the log", not payload, payload)

        took = stop_timed(mlmd)
        check(f"mlmd: SIGTERM stops it in {took:.1f} s", took < 6, took)
        took = stop_timed(db)
        db_log = docker("logs", db)
        check(
            f"mariadb: SIGTERM stops it cleanly in {took:.1f} s",
            took < 25 and "Shutdown complete" in db_log,
            db_log[-1500:],
        )
        docker("start", db)
        wait_for("mariadb again", db_ready, 60)
        check(
            "mariadb: restart on the same volume does not initialize again",
            docker("logs", db).count("initializing /var/lib/mysql") == 1,
        )
        docker("start", mlmd)
        wait_for("mlmd again", lambda: docker("logs", mlmd).count("Server listening") == 2, 60)
        rc, out = run_client("verify")
        print(out.rstrip())
        check("mlmd: restarted on the existing schema (upgrade flag on), data kept", rc == 0)
        rc, out = run_client("web-verify")
        print(out.rstrip())
        check("mlmd: grpc-web answers after the restart", rc == 0)

        # A database restart under a running MLMD server: the next call reconnects.
        docker("restart", "-t", "30", db)
        wait_for("mariadb after restart", db_ready, 60)
        rc, out = run_client("verify")
        check("mlmd: answers again after a database restart, without its own restart", rc == 0, out)
    except Exception as e:  # report, then clean up
        check("check run", False, e)
    finally:
        for name in (mlmd, db):
            docker("rm", "-f", "-v", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)
        left = docker("ps", "-a", "--filter", f"name={tag}", "-q", check=False).strip()
        check("containers and volume removed", not left, left)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        host, port, token, phase, web_port = sys.argv[2:7]
        if phase.startswith("web"):
            sys.exit(web_client(host, int(port), int(web_port), token, phase))
        sys.exit(client(host, int(port), token, phase))
    sys.exit(main(sys.argv[1:]))
