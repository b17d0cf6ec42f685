"""Fixtures of the tracking tests: the real MLflow server of `tests.tracking.server`."""

from tests.tracking.server import keep_tracking_uri, mlflow_db, mlflow_server

__all__ = ["keep_tracking_uri", "mlflow_db", "mlflow_server"]
