"""The base class of every recipe section: strict (unknown keys are errors) and frozen after load."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
