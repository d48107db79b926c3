"""Cached, invalidated views of clients and resources: the hot path reads memory, not SQL.

Entries are dropped when the change feed (``change_log``) names them, so a change made on any
replica is seen everywhere within ``cache_staleness`` seconds, and at once on the replica that made it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from authz.clients import OAuthClient
from authz.crypto import Keyring
from authz.storage.protocols import ClientStore, ResourceStore


@dataclass(frozen=True)
class ResourceInfo:
    uri: str
    name: str
    scopes: frozenset[str]
    active: bool


class Directory:
    def __init__(self, clients: ClientStore, resources: ResourceStore, keyring: Keyring) -> None:
        self._clients_store, self._resources_store, self._keyring = clients, resources, keyring
        self._clients: dict[str, OAuthClient | None] = {}
        self._resources: dict[str, ResourceInfo | None] = {}
        self._lock = threading.Lock()

    def client(self, client_id: str) -> OAuthClient | None:
        try:
            return self._clients[client_id]
        except KeyError:
            pass
        row = self._clients_store.get_client(client_id)
        value = OAuthClient.from_row(row, self._keyring.digest) if row is not None else None
        with self._lock:
            if len(self._clients) > 100_000:
                self._clients.clear()
            self._clients[client_id] = value
        return value

    def resource(self, uri: str) -> ResourceInfo | None:
        try:
            return self._resources[uri]
        except KeyError:
            pass
        row = self._resources_store.get_resource(uri)
        value = (
            ResourceInfo(uri=row.uri, name=row.name, scopes=frozenset(row.scopes or ()), active=row.status == "active")
            if row is not None
            else None
        )
        with self._lock:
            self._resources[uri] = value
        return value

    def known_resource(self, uri: str) -> bool:
        info = self.resource(uri)
        return info is not None and info.active

    def resource_for_server(self, client: OAuthClient) -> ResourceInfo | None:
        """The resource a resource-server client introspects for."""
        if client.kind != "resource_server" or not client.resource_uri:
            return None
        return self.resource(client.resource_uri)

    def invalidate(self, topic: str, key: str) -> None:
        with self._lock:
            if topic == "client":
                self._clients.pop(key, None)
            elif topic == "resource":
                self._resources.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()
            self._resources.clear()
