"""The UI process's settings: environment variables with the ``SYMPTOM_DX_UI_`` prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from symptom_dx import contract


class UISettings(BaseSettings):
    """Read once in ``main()``; every field can be set as ``SYMPTOM_DX_UI_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SYMPTOM_DX_UI_", extra="ignore")

    model_url: str = Field("http://127.0.0.1:8080", description="model server base URL (REST)")
    model_name: str = Field(contract.MODEL_NAME, description="model name on the server")
    timeout: float = Field(3.0, gt=0, description="seconds to wait for one backend call")
    top_k: int = Field(
        contract.DEFAULT_TOP_K,
        ge=contract.MIN_TOP_K,
        le=contract.MAX_TOP_K,
        description="how many diseases to show",
    )
    host: str = Field("127.0.0.1", description="address the page listens on")
    port: int = Field(7860, ge=1, le=65535, description="port the page listens on")
    data_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices("SYMPTOM_DX_UI_DATA_DIR", "DATA_DIR"),
        description="folder with symptom_Description.csv, symptom_precaution.csv and "
        "Symptom_severity.csv (also read from DATA_DIR)",
    )
