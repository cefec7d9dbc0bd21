"""Informers against a real etcd and apiserver: a shared informer sees a
namespace's adds, updates and deletes and its lister answers like the API;
and an informer whose apiserver goes away while objects change and etcd's
history is compacted gets Gone when it resumes, relists, and ends with
exactly the right objects (the delete it missed arriving as a tombstone)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from api import StatusError, parse_selector
from client import Backoff, ClientConfig, Clientset, DeletedFinalStateUnknown, Informer, SharedInformerFactory
from deploy.local import APIServerProcess
from proto import core_pb2
from tests.support.wait import eventually

from .conftest import Etcd, start_apiserver

CM = core_pb2.ConfigMap


def configmap(name: str, **data: str) -> CM:
    obj = CM(data=data)
    obj.metadata.name = name
    obj.metadata.labels["app"] = "web" if name.startswith("web") else "other"
    return obj


class Seen:
    """What the handlers were told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def on_add(self, obj: CM) -> None:
        self.events.append(("add", obj.metadata.name))

    def on_update(self, old: CM, new: CM) -> None:
        if old.metadata.resourceVersion != new.metadata.resourceVersion:
            self.events.append(("update", new.metadata.name, new.data.get("v", "")))

    def on_delete(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key))
        else:
            self.events.append(("delete", obj.metadata.name))


async def test_informer_follows_adds_updates_and_deletes(client: Clientset, namespace: str) -> None:
    configmaps = client.resource(CM, namespace)
    await configmaps.create(configmap("before"))
    factory = SharedInformerFactory(client, namespace=namespace)
    informer = factory.informer_for(CM)
    assert factory.informer_for(CM) is informer  # one shared informer per kind
    seen = Seen()
    informer.add_event_handler(seen.on_add, seen.on_update, seen.on_delete)
    lister = factory.lister_for(CM)
    factory.start()
    try:
        assert await factory.wait_for_cache_sync(timeout=10) == {CM: True}
        assert lister.get(namespace, "before").metadata.name == "before"

        await configmaps.create(configmap("web-1", v="1"))
        await configmaps.update(configmap("web-1", v="2"))
        await configmaps.delete("before")
        await eventually(lambda: ("delete", "before") in seen.events, "the delete")

        assert seen.events == [("add", "before"), ("add", "web-1"), ("update", "web-1", "2"), ("delete", "before")]
        assert [o.metadata.name for o in lister.list(namespace)] == ["web-1"]
        assert lister.get(namespace, "web-1").data["v"] == "2"
        assert lister.list(namespace, parse_selector("app=other")) == []
        with pytest.raises(StatusError) as err:
            lister.get(namespace, "before")
        assert err.value.reason == "NotFound"
        assert informer.reflector.lists == 1

        # Writes elsewhere advance the informer's resourceVersion through
        # bookmarks (the shared apiserver sends one a second), not events.
        elsewhere = client.resource(CM, "default")
        outside = await elsewhere.create(configmap(f"{namespace}-elsewhere"))
        try:
            await eventually(lambda: int(informer.last_sync_resource_version) >= int(outside.metadata.resourceVersion),
                             "a bookmark past a write in another namespace", timeout=10)
        finally:
            await elsewhere.delete(outside.metadata.name)
        assert [e for e in seen.events if f"{namespace}-elsewhere" in e] == []
    finally:
        await factory.shutdown()


def etcd_revision_compact(etcd: Etcd, revision: str) -> None:
    subprocess.run(["etcdctl", "--endpoints", etcd.url, "compact", revision], check=True, capture_output=True,
                   env={**os.environ, "ETCDCTL_API": "3"}, timeout=30)


async def test_informer_relists_after_its_history_was_compacted(
        etcd: Etcd, workdir: Path, client: Clientset, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="client._reflector")
    configmaps = client.resource(CM, namespace)
    for name in ("keep", "change", "remove"):
        await configmaps.create(configmap(name, v="1"))
    own = await asyncio.to_thread(start_apiserver, etcd, workdir)
    replacement: APIServerProcess | None = None
    own_client = Clientset.connect(ClientConfig(server=own.target))
    informer = Informer(own_client.resource(CM, namespace), backoff=Backoff(0.1, 0.5))
    seen = Seen()
    informer.add_event_handler(seen.on_add, seen.on_update, seen.on_delete)

    def names() -> list[str]:
        return sorted(o.metadata.name for o in informer.lister().list(namespace))

    informer.start()
    try:
        assert await informer.wait_for_sync(timeout=10)
        await configmaps.create(configmap("seen"))  # through the watch: it is live
        await eventually(lambda: "seen" in names(), "the watch to deliver an add")
        watched_from = informer.last_sync_resource_version

        await asyncio.to_thread(own.stop)  # the informer's apiserver goes away...
        await configmaps.delete("remove")  # ...while things change...
        await configmaps.update(configmap("change", v="2"))
        await configmaps.create(configmap("new"))
        revision = (await configmaps.list(limit=1)).resource_version
        etcd_revision_compact(etcd, revision)  # ...and the history it needs is compacted
        assert int(revision) > int(watched_from)

        replacement = await asyncio.to_thread(
            lambda: APIServerProcess(etcd.url, port=own.port, log=workdir / f"{namespace}-replacement.log")
            .wait_ready())
        await eventually(lambda: informer.reflector.lists >= 2, "a relist", timeout=30)

        assert names() == ["change", "keep", "new", "seen"]
        assert informer.lister().get(namespace, "change").data["v"] == "2"
        after_relist = seen.events[seen.events.index(("add", "seen")) + 1:]
        assert sorted(after_relist) == sorted([("tombstone", f"{namespace}/remove"), ("update", "change", "2"),
                                              ("add", "new")])
        assert informer.reflector.lists == 2
        relists = [r.getMessage() for r in caplog.records if "relisting" in r.getMessage()]
        assert relists and all("too old resource version" in m for m in relists), relists

        await configmaps.create(configmap("after"))  # and it watches again from the relist
        await eventually(lambda: "after" in names(), "an add after the relist")
    finally:
        await informer.stop()
        await own_client.close()
        await asyncio.to_thread(own.stop)
        if replacement is not None:
            await asyncio.to_thread(replacement.stop)
