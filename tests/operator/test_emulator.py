"""The API emulator's fixes to kmock (tests/support/kube_emulator.py), one by one, over HTTP."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.operator.conftest import declare_resources, wait_for
from tests.support.kube_emulator import ApiError, EmulatorThread, KubeClient

Json = dict[str, Any]
BUILDS = "/apis/heron.dev/v1alpha1/namespaces/emu/enginebuilds"


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeClient]:
    with EmulatorThread(setup=declare_resources) as cluster:
        yield KubeClient(cluster.url)


def build(name: str, **labels: str) -> Json:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"modelName": name}}


def test_create_stamps_metadata_and_refuses_a_second_one(kube: KubeClient) -> None:
    created = kube.create(BUILDS, build("stamped"))
    meta = created["metadata"]
    assert uuid.UUID(meta["uid"]) and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0 and meta["creationTimestamp"].endswith("Z")
    assert meta["namespace"] == "emu"  # from the URL
    assert (created["apiVersion"], created["kind"]) == ("heron.dev/v1alpha1", "EngineBuild")
    with pytest.raises(ApiError) as refused:
        kube.create(BUILDS, build("stamped"))
    assert (refused.value.status, refused.value.body["reason"]) == (409, "AlreadyExists")
    event = kube.create("/api/v1/namespaces/emu/events", {"metadata": {"generateName": "ev-"}})
    assert event["metadata"]["name"].startswith("ev-") and len(event["metadata"]["name"]) == 8


def test_a_stale_resource_version_is_a_conflict(kube: KubeClient) -> None:
    rv = kube.create(BUILDS, build("raced"))["metadata"]["resourceVersion"]
    moved = kube.patch(f"{BUILDS}/raced", {"metadata": {"labels": {"a": "1"}}})
    assert int(moved["metadata"]["resourceVersion"]) > int(rv)
    with pytest.raises(ApiError) as stale:
        kube.patch(f"{BUILDS}/raced/status", {"metadata": {"resourceVersion": rv}, "status": {}})
    assert (stale.value.status, stale.value.body["reason"]) == (409, "Conflict")
    current = moved["metadata"]["resourceVersion"]
    done = kube.patch(
        f"{BUILDS}/raced/status", {"metadata": {"resourceVersion": current}, "status": {"x": 1}}
    )
    assert done["status"] == {"x": 1}
    # An unchanged object keeps its version: no write, no event.
    again = kube.patch(f"{BUILDS}/raced", {"metadata": {"labels": {"a": "1"}}})
    assert again["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]


def test_status_is_a_subresource_and_generation_follows_the_spec(kube: KubeClient) -> None:
    kube.create(BUILDS, {**build("split"), "status": {"phase": "Forged"}})
    assert "status" not in kube.get(f"{BUILDS}/split")  # dropped on create
    main = kube.patch(f"{BUILDS}/split", {"spec": {"modelName": "b"}, "status": {"phase": "X"}})
    assert main["spec"]["modelName"] == "b" and "status" not in main
    assert main["metadata"]["generation"] == 2
    status = kube.patch(
        f"{BUILDS}/split/status", {"spec": {"modelName": "c"}, "status": {"phase": "Y"}}
    )
    assert status["spec"]["modelName"] == "b" and status["status"] == {"phase": "Y"}
    assert status["metadata"]["generation"] == 2  # status and metadata leave it
    labelled = kube.patch(f"{BUILDS}/split", {"metadata": {"labels": {"k": "v"}}})
    assert labelled["metadata"]["generation"] == 2
    # Without a status subresource (kopf's peerings), status is an ordinary field.
    peering = "/apis/kopf.dev/v1/namespaces/emu/kopfpeerings"
    kube.create(peering, {"metadata": {"name": "p"}})
    assert kube.patch(f"{peering}/p", {"status": {"me": {"priority": 1}}})["status"]["me"]


def test_json_patch_and_selectors(kube: KubeClient) -> None:
    kube.create(BUILDS, build("s1", tier="gpu", app="heron"))
    kube.create(BUILDS, build("s2", tier="cpu", app="heron"))
    kube.create(BUILDS, build("s3", app="other"))
    patched = kube.patch(
        f"{BUILDS}/s3", [{"op": "add", "path": "/metadata/labels/tier", "value": "edge"}]
    )
    assert patched["metadata"]["labels"]["tier"] == "edge"

    def names(**params: str) -> list[str]:
        return sorted(
            o["metadata"]["name"]
            for o in kube.list(BUILDS, **params)
            if o["metadata"]["name"] in {"s1", "s2", "s3"}
        )

    assert names(labelSelector="app=heron,tier!=cpu") == ["s1"]
    assert names(labelSelector="tier in (gpu, edge)") == ["s1", "s3"]
    assert names(labelSelector="tier notin (gpu),app") == ["s2", "s3"]
    assert names(labelSelector="!tier") == []
    assert names(fieldSelector="metadata.name=s2") == ["s2"]
    listing = kube.get(f"{BUILDS}?labelSelector=app%3Dheron")
    assert listing["kind"] == "EngineBuildList" and listing["apiVersion"] == "heron.dev/v1alpha1"
    assert int(listing["metadata"]["resourceVersion"]) > 0


def test_a_watch_starts_at_its_resource_version_and_ends_with_a_bookmark(kube: KubeClient) -> None:
    kube.create(BUILDS, build("w1", watched="yes"))
    since = kube.get(BUILDS)["metadata"]["resourceVersion"]
    kube.patch(f"{BUILDS}/w1", {"spec": {"modelName": "after"}})
    kube.create(BUILDS, build("w2", watched="no"))
    seen: list[Json] = []
    params = {"resourceVersion": since, "timeoutSeconds": "2", "allowWatchBookmarks": "true",
              "labelSelector": "watched=yes"}  # fmt: skip

    def watch() -> None:
        seen.extend(kube.watch(BUILDS, timeout_s=10, **params))

    watcher = threading.Thread(target=watch)
    watcher.start()
    # Only the change after `since` (not a replay of w1 as ADDED; w2 is not selected) ...
    wait_for(lambda: len(seen) >= 1, "the backlog event")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [("MODIFIED", "w1")]
    # ... then live events, until timeoutSeconds ends the stream with a bookmark.
    kube.delete(f"{BUILDS}/w1")
    watcher.join(10)
    assert [e["type"] for e in seen] == ["MODIFIED", "DELETED", "BOOKMARK"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions) and versions[0] > int(since)


def test_finalizers_hold_a_deletion(kube: KubeClient) -> None:
    kube.create(BUILDS, {**build("held"), "metadata": {"name": "held", "finalizers": ["x/y"]}})
    kube.delete(f"{BUILDS}/held")
    marked = kube.get(f"{BUILDS}/held")
    assert marked["metadata"]["deletionTimestamp"]
    kube.patch(f"{BUILDS}/held", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as gone:
        kube.get(f"{BUILDS}/held")
    assert gone.value.status == 404


def test_core_discovery_names_its_group_version(kube: KubeClient) -> None:
    assert kube.get("/api/v1")["groupVersion"] == "v1"
    resources = {r["name"]: r for r in kube.get("/apis/heron.dev/v1alpha1")["resources"]}
    assert resources["enginebuilds"]["namespaced"] is True and "enginebuilds/status" in resources
