"""The BigQuery client a run opens: an emulator's endpoint with anonymous credentials, a
service-account key file, or application-default credentials — each failure one line."""

from __future__ import annotations

import json
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery

from daglake.engine_settings import BigQuerySettings
from daglake.errors import UsageError


def connect(settings: BigQuerySettings, root: Path) -> bigquery.Client:
    options = ClientOptions(api_endpoint=settings.api_endpoint) if settings.api_endpoint else None
    credentials: Credentials | None
    project = settings.project
    if settings.api_endpoint:
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        project = project or "daglake-local"
    elif settings.credentials:
        credentials, project = _key_file(root / settings.credentials, settings.credentials, project)
    else:
        credentials, project = _application_default(project)
    if not project:
        raise UsageError("engine.bigquery.project is not set and the credentials name no project")
    return bigquery.Client(project=project, credentials=credentials, location=settings.location, client_options=options)


def _key_file(path: Path, shown: str, project: str | None) -> tuple[Credentials, str | None]:
    from google.oauth2 import service_account

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"engine.bigquery.credentials: {shown}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"engine.bigquery.credentials: {shown}: not a JSON key file ({exc})") from None
    try:
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=["https://www.googleapis.com/auth/bigquery"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"engine.bigquery.credentials: {shown}: not a service-account key ({exc})") from None
    return credentials, project or info.get("project_id")


def _application_default(project: str | None) -> tuple[Credentials, str | None]:
    import google.auth

    try:
        credentials, found = google.auth.default(scopes=["https://www.googleapis.com/auth/bigquery"])
    except auth_errors.DefaultCredentialsError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "none found"
        raise UsageError(
            f"no BigQuery credentials: set engine.bigquery.credentials to a key file, or run "
            f"`gcloud auth application-default login` ({first})"
        ) from None
    return credentials, project or found
