"""The free-text parser as a v2 model of its own, ``symptom-parser``, served beside the
classifier: text in (``text``, BYTES [N]), what was read from it out (``understood``,
``denied``, ``not_understood``, one element each), nothing ranked.

It is how a client without the parser reads what a person typed: the UI asks it, so that a
deployment holds one Korean analyser (Kiwi, ~240 MiB), in the model server, and not one more in
every UI replica. A text that names no symptom is an answer here (all of it not understood), not
a 400 as for the classifier; bad input (not BYTES, not UTF-8, too long) is a 400 naming the
problem, within the classifier's limits (``symptom_dx.contract``). It runs through KServe's data
plane (REST and gRPC, v2 only); the text is never logged.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from serving.decoding import texts_of
from serving.model import tensor_of
from serving.protocol import RequestRejected, shown
from serving.symptom_inputs import RequestBudget
from symptom_dx import contract
from symptom_dx.free_text import ParsedSymptoms, parse_symptoms


class SymptomParser(Model):
    """``symptom_dx.free_text.parse_symptoms`` as a ``kserve.Model``."""

    def __init__(self, name: str = contract.PARSER_MODEL_NAME):
        super().__init__(name)

    def load(self) -> bool:
        # Both languages once, before the server is ready (in the classifier's process Kiwi is
        # loaded already: one analyser for both models).
        parse_symptoms("headache, no fever", "en")
        parse_symptoms("열이 나요", "ko")
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict]:
        return [t.metadata() for t in contract.PARSER_INPUTS]

    def get_output_types(self) -> list[dict]:
        return [t.metadata() for t in contract.PARSER_OUTPUTS]

    async def preprocess(
        self, payload: dict | bytes | InferRequest, headers: dict[str, str] | None = None
    ) -> tuple[list[str], InferRequest]:
        if not isinstance(payload, InferRequest):
            raise RequestRejected("bad_input", f"model '{self.name}' answers v2 requests only")
        names = [i.name for i in payload.inputs]
        if names != [contract.TEXT.name]:
            raise RequestRejected(
                "bad_input",
                f"expected one input '{contract.TEXT.name}' (BYTES [N], free text), "
                f"got {shown(names) if names else 'none'}",
            )
        texts = texts_of(tensor_of(payload.inputs[0]))
        budget = RequestBudget()
        for text in texts:
            budget.spend_free_text(text)
        return texts, payload

    def validate(self, payload: Any) -> Any:
        return payload  # preprocess has validated it against the contract

    async def predict(
        self, payload: tuple[list[str], InferRequest], headers: dict[str, str] | None = None
    ) -> tuple[list[ParsedSymptoms], InferRequest]:
        texts, request = payload
        # in a thread: a long Korean text takes milliseconds, health checks should not wait
        parsed = await asyncio.to_thread(lambda: [parse_symptoms(t) for t in texts])
        return parsed, request

    async def postprocess(
        self,
        result: tuple[list[ParsedSymptoms], InferRequest],
        headers: dict[str, str] | None = None,
    ) -> InferResponse:
        parsed, request = result
        join = contract.LIST_SEPARATOR.join
        columns = {
            contract.UNDERSTOOD: [join(p.present) for p in parsed],
            contract.DENIED: [join(p.absent) for p in parsed],
            contract.NOT_UNDERSTOOD: [
                contract.NOT_UNDERSTOOD_SEPARATOR.join(p.not_understood) for p in parsed
            ],
        }
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=[
                InferOutput(t.name, [len(parsed)], t.datatype, data) for t, data in columns.items()
            ],
            use_binary_outputs=request.use_binary_outputs,
        )
