"""Schemathesis against the OpenAPI document of a real server.

Generates requests from the published schema, stateful sequences included,
and checks that none gets a 5xx and that every response has a documented
status, content type and body shape. The run is short and seeded; set
SWITCHBOARD_SCHEMATHESIS_EXAMPLES for a longer one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.rawclient import create_user
from tests.support.server import ServerProcess

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def test_api_conforms_to_its_openapi_document(
    raw_server: ServerProcess, tmp_path: Path
) -> None:
    _, token = create_user(raw_server.base_url, "fuzzer")
    examples = os.environ.get("SWITCHBOARD_SCHEMATHESIS_EXAMPLES", "10")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        raw_server.base_url + "/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        # Logging out would revoke the token the other requests use.
        "--exclude-path",
        "/v1/sessions/current",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        examples,
        "--seed",
        "1",
        "--max-time",
        "45",
        "--workers",
        "1",
    ]

    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
