"""v2 gRPC with KServe's client against our gRPC server in this process: answers, raw
tensors, metadata, readiness, the repository extension and every error as a status code."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import (
    GRPCInferenceServiceServicer,
    GRPCInferenceServiceStub,
    add_GRPCInferenceServiceServicer_to_server,
)
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import get_content
from testkit import FUNGAL, MISSPELT

from serving.errors import error_status
from serving.grpc_service import MODEL_INFER, SERVICE, ThreadedService, _Recorder
from serving.grpc_tensors import _packed_numbers
from symptom_dx import contract
from symptom_dx.contract import MODEL_NAME
from symptom_dx.vocabulary import vocabulary

Tensor = pb.ModelInferRequest.InferInputTensor


def names_request(texts, top_k=None) -> InferRequest:
    inputs = [InferInput("symptoms", [len(texts)], "BYTES", list(texts))]
    params = {"top_k": top_k} if top_k is not None else None
    return InferRequest(model_name=MODEL_NAME, infer_inputs=inputs, parameters=params)


def infer(target: str, request: InferRequest) -> dict[str, np.ndarray]:
    async def call():
        async with InferenceGRPCClient(target, retries=0, timeout=10) as client:
            return await client.infer(request)

    return {o.name: o.as_numpy() for o in asyncio.run(call()).outputs}


@pytest.fixture(scope="module")
def stub(grpc_target):
    with grpc.insecure_channel(grpc_target) as channel:
        yield GRPCInferenceServiceStub(channel)


def test_names_vector_raw_and_top_k(grpc_target):
    out = infer(grpc_target, names_request([FUNGAL, "fever, cough"], top_k=2))
    assert out["disease"].shape == (2, 2) and out["disease"][0, 0] == b"Fungal infection"
    X = np.zeros((1, contract.N_SYMPTOMS), dtype=np.float32)
    X[0, [vocabulary().position(s) for s in vocabulary().parse(FUNGAL)]] = 1
    tensor = InferInput("input-0", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=True)  # raw_input_contents
    raw = infer(grpc_target, InferRequest(model_name=MODEL_NAME, infer_inputs=[tensor]))
    assert raw["disease"][0, 0] == b"Fungal infection"


def test_health_and_metadata(stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME)).ready
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL_NAME))
    assert [t.name for t in meta.outputs] == [t.name for t in contract.OUTPUTS]
    assert [t.name for t in meta.inputs] == [t.name for t in contract.INPUTS]


def _code(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return info.value.code(), info.value.details()


def request(*elements: bytes, datatype="BYTES", shape=(1,), raw=(), **kw) -> pb.ModelInferRequest:
    """A ModelInfer request with one ``symptoms`` tensor of ``elements`` (and ``raw`` contents)."""
    contents = pb.InferTensorContents(bytes_contents=list(elements)) if elements else None
    tensor = Tensor(name="symptoms", datatype=datatype, shape=list(shape), contents=contents)
    return pb.ModelInferRequest(
        model_name=kw.get("model_name", MODEL_NAME), inputs=[tensor], raw_input_contents=list(raw)
    )


INVALID = grpc.StatusCode.INVALID_ARGUMENT
ERRORS = {
    "unknown symptom": (request(b"blue toenails"), INVALID, "blue toenails"),
    "non-UTF-8 element": (request(b"\xffitching"), INVALID, "UTF-8"),
    "raw data shorter than its prefix": (request(raw=[b"\x05\x00\x00\x00ab"]), INVALID, "binary"),
    "raw contents without inputs": (
        pb.ModelInferRequest(model_name=MODEL_NAME, raw_input_contents=[b"abc"]),
        INVALID,
        "raw input contents",
    ),
    "negative shape": (request(shape=[-1]), INVALID, "shape"),
    "unknown datatype": (request(datatype="XX"), INVALID, ""),
    "unknown model": (pb.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_requests_are_status_codes_with_a_message(stub, case):
    message, code, expected = ERRORS[case]
    got, details = _code(stub.ModelInfer, message)
    assert got == code and expected in details


def test_top_k_string_parameter_is_checked(stub):
    message = request(b"itching")
    message.parameters["top_k"].string_param = "²"
    assert _code(stub.ModelInfer, message)[0] == INVALID


def test_undecodable_messages_are_invalid_argument(grpc_target):
    with grpc.insecure_channel(grpc_target) as channel:
        for method in ("ModelInfer", "ServerReady", "ModelMetadata", "RepositoryModelUnload"):
            call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
            code, details = _code(call, b"\xff\xff\xff\xff")
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details == (
                "malformed request message"
            )


def test_repository_rpcs_are_closed_by_default(stub):
    for call, request in (
        (stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME)),
        (stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name=MODEL_NAME)),
    ):
        code, details = _code(call, request)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "--allow_repository_changes" in details
    assert stub.ServerReady(pb.ServerReadyRequest()).ready


def test_with_the_opt_in_unload_and_load_work_and_readiness_follows(stub, server):
    extension = server.model_repository_extension
    extension.allow_changes = True
    try:
        unload = stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME))
        assert unload.isUnloaded
        assert not stub.ServerReady(pb.ServerReadyRequest()).ready
        load = stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=MODEL_NAME))
        assert load.isLoaded
    finally:
        extension.allow_changes = False
        if MODEL_NAME not in server.registered_models.get_models():
            server.registered_models.load(MODEL_NAME)
    assert stub.ServerReady(pb.ServerReadyRequest()).ready


def _vector(patients: list[list[str]]) -> np.ndarray:
    X = np.zeros((len(patients), contract.N_SYMPTOMS), dtype=np.float32)
    for i, names in enumerate(patients):
        X[i, [vocabulary().position(vocabulary().normalise(n)) for n in names]] = 1
    return X


def _same_answer_requests() -> dict[str, pb.ModelInferRequest]:
    ids = [s.id for s in vocabulary().selectable]
    patients = [ids[i : i + 3] for i in range(0, 64 * 2, 2)]
    X = _vector(patients[:8])
    requests = {
        "names": request(FUNGAL.encode()),
        "names, top_k 41, an id": request(b"fever, cough", b"vomiting", shape=[2]),
        "64 patients": request(*(", ".join(p).encode() for p in patients), shape=[64]),
        "misspelt names (matched on the event loop)": request(b"itchng, skin rsh, vomitting"),
        "nine misspelt names (matched in the worker)": request(", ".join(MISSPELT).encode()),
        "1024 patients (answered off the event loop)": request(
            *(", ".join(patients[i % 64]).encode() for i in range(1024)), shape=[1024]
        ),
        "raw BYTES": request(
            raw=[b"".join(len(t).to_bytes(4, "little") + t for t in (b"itching", b"cough"))],
            shape=[2],
        ),
        "raw FP32 vector": pb.ModelInferRequest(
            model_name=MODEL_NAME,
            inputs=[Tensor(name="input-0", datatype="FP32", shape=list(X.shape))],
            raw_input_contents=[X.tobytes()],
        ),
    }
    requests["names, top_k 41, an id"].parameters["top_k"].int64_param = 41
    requests["names, top_k 41, an id"].id = "request-7"
    for datatype, field, cast in (
        ("FP32", "fp32_contents", float),
        ("INT64", "int64_contents", int),
        ("BOOL", "bool_contents", bool),
    ):
        contents = pb.InferTensorContents(**{field: [cast(v) for v in X.reshape(-1)]})
        tensor = Tensor(name="input-0", datatype=datatype, shape=list(X.shape), contents=contents)
        requests[f"{datatype} vector"] = pb.ModelInferRequest(
            model_name=MODEL_NAME, inputs=[tensor]
        )
    absent = Tensor(
        name="absent",
        datatype="BYTES",
        shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[b"fever"]),
    )
    requests["names and denied names"] = request(b"cough, headache")
    requests["names and denied names"].inputs.append(absent)
    return requests


def test_the_fast_path_answers_as_kserves_path(grpc_targets):
    """The same requests and bad requests through both paths: the same message back (the
    response id aside when the request has none) or the same status and details. Each path
    is its own server (one servicer each: a handler cached across servers once made the
    KServe path answer through the fast path's, and this test compare the fast path with
    itself)."""
    requests = _same_answer_requests()
    requests.update({f"error: {name}": message for name, (message, _, _) in ERRORS.items()})
    answers = {}
    for path, target in grpc_targets.items():
        with grpc.insecure_channel(target) as channel:
            stub = GRPCInferenceServiceStub(channel)
            for name, message in requests.items():
                try:
                    response = stub.ModelInfer(message)
                    if not message.id:
                        response.id = ""
                    answers[path, name] = response
                except grpc.RpcError as e:
                    answers[path, name] = (e.code(), e.details())
    for name in requests:
        fast, kserve = answers["fast-path", name], answers["kserve-path", name]
        if name == "error: unknown datatype":  # KServe's InferRequest.from_grpc refuses it
            # before our model's decoding, which names the input and the datatypes it takes
            assert kserve == (INVALID, "invalid content type"), kserve
            assert fast[0] == INVALID and "must have datatype BYTES, got XX" in fast[1], fast
            continue
        assert fast == kserve, name
        if not name.startswith("error"):
            assert isinstance(fast, pb.ModelInferResponse) and len(fast.outputs) == len(
                contract.OUTPUTS
            ), name
            assert bool(fast.raw_output_contents) == name.startswith("raw"), name


def test_stopping_ends_every_wait_for_the_event_loop(server):
    """A gRPC thread waiting for KServe's servicer on the event loop when the server stops is
    answered UNAVAILABLE at once, instead of waiting for ever on a loop that will not run."""
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=loop.run_forever)
    running.start()
    errors: list[Exception] = []

    def wait(service: ThreadedService) -> None:
        try:
            service._on_loop(asyncio.sleep(3600))
        except Exception as e:
            errors.append(e)

    try:
        servicer = InferenceServicer(server.dataplane, server.model_repository_extension)
        service = ThreadedService(servicer, None, {}, loop)
        waiter = threading.Thread(target=wait, args=(service,))
        waiter.start()
        deadline = time.monotonic() + 5
        while not service._waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        service.cancel_all()
        waiter.join(5)
        assert not waiter.is_alive() and len(errors) == 1
        assert error_status(errors[0])[1] == grpc.StatusCode.UNAVAILABLE, errors
        with pytest.raises(Exception) as late:  # a wait that begins after the stop
            service._on_loop(asyncio.sleep(3600))
        assert error_status(late.value)[1] == grpc.StatusCode.UNAVAILABLE
    finally:
        loop.call_soon_threadsafe(loop.stop)
        running.join(5)
        loop.close()


@pytest.mark.parametrize(
    "datatype, field, make",
    [
        ("FP32", "fp32_contents", lambda r, n: r.random(n).astype(np.float32).tolist()),
        ("FP64", "fp64_contents", lambda r, n: r.random(n).tolist()),
        ("BOOL", "bool_contents", lambda r, n: (r.random(n) > 0.5).tolist()),
    ],
)
def test_fixed_width_contents_read_from_their_wire_bytes_are_what_kserve_reads(
    datatype, field, make
):
    """The fast path reads FP32, FP64 and BOOL contents from their packed wire bytes: the same
    numbers as KServe's ``get_content`` at every length (one- and two-byte length prefixes,
    64 patients' vectors), and KServe's reading whenever the contents are anything else."""
    rng = np.random.default_rng(0)
    for n in (1, 15, 16, 31, 132, 64 * contract.N_SYMPTOMS, 40_000):
        contents = pb.InferTensorContents(**{field: make(rng, n)})
        assert _packed_numbers(datatype, contents).tolist() == get_content(datatype, contents)
    other = "int64_contents"
    mixed = pb.InferTensorContents(**{field: make(rng, 3), other: [1, 0]})
    for contents in (pb.InferTensorContents(), pb.InferTensorContents(**{other: [1]}), mixed):
        assert _packed_numbers(datatype, contents) is None
    assert _packed_numbers("INT64", pb.InferTensorContents(int64_contents=[1, 0])) is None


def test_the_servicers_methods_are_read_from_new_and_old_generated_code():
    # grpcio >= 1.62's generated code registers the methods by name; older code only as one
    # generic handler: either way each method of the v2 service is found, with its types.
    registered = _Recorder()
    add_GRPCInferenceServiceServicer_to_server(GRPCInferenceServiceServicer(), registered)
    handlers = registered.handlers()
    methods = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
    assert sorted(handlers) == sorted(f"/{SERVICE}/{m.name}" for m in methods)
    assert handlers[MODEL_INFER].request_deserializer == pb.ModelInferRequest.FromString
    generic_only = _Recorder()
    by_name = {name.rsplit("/", 1)[1]: h for name, h in handlers.items()}
    generic_only.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, by_name),))
    assert generic_only.handlers() == handlers
