"""Built on upstream's upload framework, which only the real synapse-sdk has."""

from __future__ import annotations

from synapse_sdk.plugins.actions.upload import BaseUploadAction  # noqa: F401


class Upload(BaseUploadAction):  # type: ignore[misc, valid-type]
    pass
