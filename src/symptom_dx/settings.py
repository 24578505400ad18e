"""Settings read from the environment (pydantic-settings). Build them in main(), not at import.

The variable names are the ones the rest of the ecosystem already uses, so one Kubernetes
Secret serves the pipeline pods, MLflow and KServe's storage initializer alike:
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, and
MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MODEL_NAME = "disease-classifier"


class S3Settings(BaseSettings):
    """Where datasets and models are stored: any S3 endpoint (MinIO in the cluster)."""

    model_config = SettingsConfigDict(extra="ignore")

    endpoint_url: str = Field(
        "",
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"),
        description="S3 endpoint URL, e.g. http://minio.minio.svc:9000; empty for AWS S3",
    )
    access_key: SecretStr = Field(SecretStr(""), validation_alias="AWS_ACCESS_KEY_ID")
    secret_key: SecretStr = Field(SecretStr(""), validation_alias="AWS_SECRET_ACCESS_KEY")
    region: str = Field("us-east-1", validation_alias="AWS_DEFAULT_REGION")
    bucket: str = Field("symptom-dx", validation_alias="SYMPTOM_DX_BUCKET")
    timeout_s: float = Field(5.0, validation_alias="SYMPTOM_DX_S3_TIMEOUT")

    @property
    def endpoint(self) -> str:
        """The endpoint, AWS S3's regional one when none is set."""
        return self.endpoint_url or f"https://s3.{self.region}.amazonaws.com"

    @property
    def host(self) -> str:
        return urlparse(self.endpoint).netloc

    @property
    def secure(self) -> bool:
        return urlparse(self.endpoint).scheme == "https"


class MlflowSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    tracking_uri: str = Field("http://127.0.0.1:5000", validation_alias="MLFLOW_TRACKING_URI")
    experiment: str = Field("disease-prediction", validation_alias="SYMPTOM_DX_EXPERIMENT")
    registered_model: str = Field(MODEL_NAME, validation_alias="SYMPTOM_DX_REGISTERED_MODEL")
    timeout_s: float = Field(5.0, validation_alias="SYMPTOM_DX_MLFLOW_TIMEOUT")
