"""The ServiceAccount controller: every namespace has a `default`
ServiceAccount, and gets it back if it is deleted.

Keys are namespace names. A namespace that is gone or terminating needs
nothing; otherwise, if the cache has no `default` ServiceAccount there, one
is created (AlreadyExists means another writer was faster: done).
"""

from __future__ import annotations

from api import StatusError
from client import DeletedFinalStateUnknown
from proto import core_pb2

from ._controller import Controller, ControllerContext

DEFAULT = "default"

Deleted = core_pb2.ServiceAccount | DeletedFinalStateUnknown[core_pb2.ServiceAccount]


class ServiceAccountController(Controller):
    name = "serviceaccount"
    default_workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        namespaces = ctx.informers.informer_for(core_pb2.Namespace)
        accounts = ctx.informers.informer_for(core_pb2.ServiceAccount)
        self.namespaces = namespaces.lister()
        self.accounts = accounts.lister()
        namespaces.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        accounts.add_event_handler(on_delete=self._account_deleted)

    def _account_deleted(self, sa: Deleted) -> None:
        obj = sa.obj if isinstance(sa, DeletedFinalStateUnknown) else sa
        if obj.metadata.name == DEFAULT:
            self.queue.add(obj.metadata.namespace)

    async def sync(self, key: str) -> None:
        try:
            ns = self.namespaces.get("", key)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        if ns.metadata.deletionTimestamp or ns.status.phase == "Terminating":
            return
        try:
            self.accounts.get(key, DEFAULT)
            return
        except StatusError as err:
            if err.reason != "NotFound":
                raise
        try:
            await self.clientset.resource(core_pb2.ServiceAccount, key).create(
                core_pb2.ServiceAccount(metadata={"name": DEFAULT, "namespace": key}))
        except StatusError as err:
            if err.reason not in ("AlreadyExists", "Forbidden", "NotFound"):  # raced, or the namespace is going
                raise
