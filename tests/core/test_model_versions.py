"""The SetModelVersionsRequest check the control service and every inference instance share."""

from __future__ import annotations

import pytest
from heron.core.model_versions import VersionRequestError, check_request
from heron.v1.control_pb2 import SetModelVersionsRequest


@pytest.mark.parametrize(
    "request_",
    [
        SetModelVersionsRequest(),  # every stream on the config's model: a rollback
        SetModelVersionsRequest(default_version="2"),
        SetModelVersionsRequest(stream_versions={"source-0": "2", "door": "v2.1-int8"}),
    ],
)
def test_well_formed_requests_pass(request_: SetModelVersionsRequest) -> None:
    check_request(request_)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            SetModelVersionsRequest(stream_versions={"": "2"}),
            "stream_versions['']: expected a stream id, got an empty one",
        ),
        (
            SetModelVersionsRequest(stream_versions={" ": "2"}),
            "stream_versions[' ']: expected a stream id, got an empty one",
        ),
        (
            SetModelVersionsRequest(stream_versions={"source-0": ""}),
            "stream_versions['source-0']: expected a version, got an empty one",
        ),
        (
            SetModelVersionsRequest(default_version="../1"),
            "default_version: expected a version: 1-64 letters, digits, '_', '.', '-'",
        ),
        (
            SetModelVersionsRequest(stream_versions={"source-0": "2/model.onnx"}),
            "stream_versions['source-0']: expected a version",
        ),
        (SetModelVersionsRequest(default_version=" 2"), "default_version: expected a version"),
    ],
)
def test_malformed_requests_name_the_field(request_: SetModelVersionsRequest, message: str) -> None:
    with pytest.raises(VersionRequestError) as caught:
        check_request(request_)
    assert str(caught.value).startswith(message)
    assert str(caught.value).startswith(f"{caught.value.field}: ")
