"""A model process that serves as model.worker does, except that loading the model directory
named by QABOT_TEST_GATED_MODEL waits until a byte can be read from the FIFO named by
QABOT_TEST_LOAD_GATE: a load that lasts exactly as long as a test wants."""

import os
from pathlib import Path

import model.worker
from model.predictor import AnswerModel
from model.worker import main

GATED_MODEL = os.environ["QABOT_TEST_GATED_MODEL"]
GATE = Path(os.environ["QABOT_TEST_LOAD_GATE"])


class GatedLoad(AnswerModel):
    @classmethod
    def load(cls, path: Path, *, weights: bool = True) -> AnswerModel:
        if str(path) == GATED_MODEL:
            with GATE.open("rb") as gate:
                gate.read(1)
        return AnswerModel.load(path, weights=weights)


model.worker.AnswerModel = GatedLoad  # type: ignore[misc]
main()
