"""The PBX client: typed async access to the vendor's HTTP API."""

from __future__ import annotations

from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.pbx.times import PbxTime

__all__ = ["PbxClient", "PbxError", "PbxTime"]
