"""The controller-manager process: flags, health, leader election between
two replicas, and the ServiceAccount controller (every namespace gets a
`default` ServiceAccount back, however it lost it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from client import Clientset
from deploy.local import APIServerProcess
from proto import coordination_pb2, core_pb2
from tests.support.wait import eventually

from .conftest import start_component


def test_help_and_bad_controller_names() -> None:
    out = subprocess.run([sys.executable, "-m", "controller_manager", "--help"], capture_output=True, text=True,
                         check=True)
    assert "--controllers" in out.stdout and "--concurrent-serviceaccount-syncs" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "controller_manager", "--controllers", "*,-nosuch"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "unknown controller 'nosuch'" in bad.stderr


async def test_default_service_accounts(apiserver: APIServerProcess, workdir: Path, client: Clientset,
                                        namespace: str) -> None:
    manager = start_component("controller_manager", apiserver, workdir, "--leader-elect", "false",
                              "--controllers", "serviceaccount")
    try:
        accounts = client.resource(core_pb2.ServiceAccount, namespace)

        async def present() -> bool:
            return (await accounts.get("default")).metadata.name == "default"
        await eventually(present)
        await accounts.delete("default")
        await eventually(present)  # recreated
    finally:
        manager.stop()


async def test_two_replicas_elect_one_leader(apiserver: APIServerProcess, workdir: Path, client: Clientset,
                                             namespace: str) -> None:
    flags = ("--controllers", "serviceaccount", "--leader-elect-lease-duration", "3",
             "--leader-elect-renew-deadline", "2", "--leader-elect-retry-period", "0.5",
             "--leader-elect-resource-name", f"cm-{namespace}")
    first = start_component("controller_manager", apiserver, workdir, *flags)
    second = start_component("controller_manager", apiserver, workdir, *flags)
    leases = client.resource(coordination_pb2.Lease, "kube-system")
    try:
        async def held() -> bool:
            return bool((await leases.get(f"cm-{namespace}")).spec.holderIdentity)
        await eventually(held)
        holder = (await leases.get(f"cm-{namespace}")).spec.holderIdentity

        async def one_leads() -> bool:
            return any("started controllers" in p.log.read_text() for p in (first, second))
        await eventually(one_leads)
        leader, standby = (first, second) if "started controllers" in first.log.read_text() else (second, first)
        assert "started controllers" not in standby.log.read_text()  # only the holder works
        leader.kill()  # no release: the standby must wait out the lease

        async def taken_over() -> bool:
            lease = await leases.get(f"cm-{namespace}")
            return lease.spec.holderIdentity not in ("", holder)
        await eventually(taken_over, timeout=15)
        await eventually(lambda: _logged(standby.log, "started controllers"))
    finally:
        first.stop()
        second.stop()


async def _logged(log: Path, text: str) -> bool:
    return text in log.read_text()


@pytest.mark.parametrize("flag", ["--controllers=serviceaccount,-serviceaccount"])
async def test_a_manager_with_no_controllers_still_serves_health(apiserver: APIServerProcess, workdir: Path,
                                                                 flag: str) -> None:
    manager = start_component("controller_manager", apiserver, workdir, flag, "--leader-elect", "false")
    manager.stop()
    assert manager.proc.returncode == 0
