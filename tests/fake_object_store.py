"""An in-memory object store for the restore planner's tests (tests/test_restore_trust.py, test_restore_trident.py)."""

from __future__ import annotations

from typing import Any


class ObjectStore:
    """The object-store calls the planner makes (GetObject, and ListObjectsV2 through boto3's paginator),
    answering like S3: NoSuchKey for a missing object, pages of at most 1,000 keys."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        import io

        from botocore.exceptions import ClientError

        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no such key"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        objects = self.objects

        class _Pages:
            def paginate(self, Bucket: str, Prefix: str) -> Any:  # noqa: N803 - boto3's names
                keys = sorted(k for k in objects if k.startswith(Prefix))
                for start in range(0, max(len(keys), 1), 1000):
                    page = keys[start : start + 1000]
                    yield {"Contents": [{"Key": k} for k in page]} if page else {"KeyCount": 0}

        return _Pages()
