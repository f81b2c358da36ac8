"""The execution side of the platform, composed: isolation, workers, invocation, async queue.

It subscribes to control's change notifications, so that cached versions are dropped and
environments of a changed function are retired.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

from lambdastack.config import Settings
from lambdastack.control import runtimes as control_runtimes
from lambdastack.control.code import CodeStore
from lambdastack.control.events import Events
from lambdastack.control.states import States
from lambdastack.identity.credentials import CredentialMinter
from lambdastack.images.store import images_folder, with_roots
from lambdastack.invoke.admission import Admission
from lambdastack.invoke.async_invoker import AsyncInvoker, AsyncSettings
from lambdastack.invoke.provisioning import Provisioner
from lambdastack.invoke.resolver import Resolver
from lambdastack.invoke.service import InvokeService
from lambdastack.invoke.snapstart_activation import SnapStartActivation
from lambdastack.invoke.specs import parse_spec_key
from lambdastack.invoke.usage import usage_key
from lambdastack.network.environment_network import EnvironmentNetwork
from lambdastack.network.host import (
    HOST_PLACEHOLDER,
    HostNetwork,
    NetworkSettings,
    NetworkUnavailable,
    functions_view,
)
from lambdastack.network.user_mode import UserModeNetwork
from lambdastack.observe.logs import LogStore
from lambdastack.observe.tracing.setup import tracing_from_environment
from lambdastack.observe.usage.keeper import UsageKeeper
from lambdastack.observe.usage.ledger import UsageLedger
from lambdastack.placement.local import LocalPlacement
from lambdastack.sandbox import cgroups, detect, seccomp
from lambdastack.store.base import Store
from lambdastack.store.event_invoke_configs import SqliteEventInvokeConfigStore
from lambdastack.store.queue import SqliteEventQueue
from lambdastack.worker import java
from lambdastack.worker.nodejs import discover_nodes
from lambdastack.worker.runtimes import discover_pythons, server_python
from lambdastack.worker.spec import EnvironmentSpec
from lambdastack.worker.tmp_disks import TmpDisks
from lambdastack.worker.worker import PlatformEnvironment, Worker, WorkerConfig

log = logging.getLogger("lambdastack")

CUSTOM_RUNTIMES = {"provided.al2", "provided.al2023"}


class Engine:
    def __init__(self, settings: Settings, store: Store, code: CodeStore, events: Events) -> None:
        self.settings = settings
        self.isolation = detect.choose(settings.isolation)
        self.cgroups = cgroups.detect() if os.geteuid() == 0 and self.isolation != "userns" else None
        try:
            seccomp.compile_filter()
            self.seccomp = True
        except OSError as e:
            log.warning("no seccomp filter for environments: %s", e)
            self.seccomp = False
        self.pythons = discover_pythons()
        self.nodes = discover_nodes()
        self.javas = java.INSTALLED = java.JavaRuntimes(settings.data_dir)
        control_runtimes.SUPPORTED = set(self.pythons) | set(self.nodes) | set(self.javas.runtimes) | CUSTOM_RUNTIMES
        self.logs = LogStore(settings.data_dir / "logs")
        # An AWS endpoint on the host's loopback (a local moto or LocalStack) is the operator's
        # own choice of where functions' SDK calls go: its port is opened to them as well.
        self.functions_aws_endpoint, aws_port = functions_view(settings.aws_endpoint_url)
        ports = settings.allow_host_ports + ((aws_port,) if aws_port else ())
        network_settings = NetworkSettings(settings.egress, ports, settings.resolv_conf)
        self.network: EnvironmentNetwork = (
            UserModeNetwork(network_settings, api_port=_loopback_port(settings.host, settings.port))
            if self.isolation == "userns" else HostNetwork(network_settings)
        )
        self.network_problem: str | None = None
        self.credentials = CredentialMinter.from_data_dir(settings.data_dir)
        self.tmp_disks: TmpDisks | None = None
        if self.isolation == "namespaces":
            problem = TmpDisks.available()
            if problem is None:
                self.tmp_disks = TmpDisks(settings.data_dir / "tmp-disks")
            else:
                log.warning("/tmp of environments is a tmpfs, charged to their memory: %s", problem)
        self.worker = Worker(
            WorkerConfig(
                isolation=self.isolation,
                data_dir=settings.data_dir,
                idle_timeout=settings.idle_timeout,
                prebuilt=settings.prebuilt,
                scaling_per_10s=settings.scaling_per_10s,
                memory_budget_mb=settings.memory_budget_mb,
                memory_limit_mb=settings.memory_limit_mb,
                memory_reserve=settings.memory_reserve,
                runtimes=dict(self.pythons),
                exec_python=server_python().executable,
                exec_binds={**{name: node.binds() for name, node in self.nodes.items()},
                            **{name: jdk.binds() for name, jdk in self.javas.runtimes.items()}},
                cpu_latency_us=settings.cpu_latency_us,
            ),
            self.cgroups,
            self.logs.append,
            network=self.network,
            platform_variables=self._platform_variables,
            tmp_disks=self.tmp_disks,
        )
        self.queue = SqliteEventQueue(settings.data_dir / "queue.db")
        self.admission = Admission(settings.account_concurrency, _reserved_of(store), _reserved_total(store))
        code_path = with_roots(code.unpacked_path, images_folder(settings.data_dir))
        self.service = InvokeService(Resolver(store), LocalPlacement(self.worker), code_path, self.queue,
                                     admission=self.admission,
                                     file_systems={m.arn: m for m in settings.file_systems},
                                     file_systems_unavailable=None if self.isolation == "namespaces" else (
                                         "file systems need namespace isolation with root: this server runs "
                                         f"with --isolation {self.isolation}"))
        self.event_invoke_configs = SqliteEventInvokeConfigStore(settings.data_dir / "lambdastack.db")
        self.async_invoker = AsyncInvoker(self.queue, self.service, store, self.event_invoke_configs, AsyncSettings(
            time_scale=settings.async_time_scale,
            concurrency=settings.async_concurrency,
            per_function=max(1, settings.async_concurrency // 4),
            aws_endpoint_url=settings.aws_endpoint_url,
        ))
        self.service.on_enqueued = self.async_invoker.notify
        self.service.tracing = tracing_from_environment()
        self.store = store
        self.provisioner = Provisioner(store, self.service, self.worker)
        self.usage = UsageLedger(settings.data_dir / "usage.db")
        self.service.usage = self.usage
        self.usage_keeper = UsageKeeper(
            self.usage, lambda: [(usage_key(spec), ready) for spec, ready in self.provisioner.ready()])
        self.snapstart = SnapStartActivation(store, States(store, events), self.service, self.worker)
        self._loop: asyncio.AbstractEventLoop | None = None
        events.on_function_changed(self._changed)
        events.on_function_deleted(self._changed)

    def _platform_variables(self, spec: EnvironmentSpec) -> PlatformEnvironment:
        """A function's own short-lived credentials (as variables, and as the document the container
        credentials endpoint serves), and where its SDKs reach Lambda and other services."""
        credentials = self.credentials.mint(spec.function_arn, spec.role)
        authorization = secrets.token_urlsafe(24)
        document = {
            "AccessKeyId": credentials["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": credentials["AWS_SECRET_ACCESS_KEY"],
            "Token": credentials["AWS_SESSION_TOKEN"],
            "Expiration": dt.datetime.fromtimestamp(self.credentials.expires(credentials["AWS_SESSION_TOKEN"]),
                                                    dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        credentials["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = authorization
        endpoints: dict[str, str] = {}
        lambda_url = self.network.endpoint_url() if self.isolation != "process" else None
        if self.isolation == "process":
            lambda_url = self.settings.base_url  # functions share the host's network
        if lambda_url:
            endpoints["AWS_ENDPOINT_URL_LAMBDA"] = lambda_url
        if self.settings.aws_endpoint_url:
            endpoints["AWS_ENDPOINT_URL"] = self.settings.aws_endpoint_url
            gateway = self.network.gateway  # not the alias: an image's own /etc/hosts lacks it
            if self.functions_aws_endpoint and gateway is not None:
                endpoints["AWS_ENDPOINT_URL"] = self.functions_aws_endpoint.replace(HOST_PLACEHOLDER, gateway)
        return PlatformEnvironment(credentials, endpoints, dict(document, authorization=authorization))

    @property
    def isolation_label(self) -> str:
        parts = [self.isolation]
        if self.cgroups is not None:
            parts.append("cgroups")
        if self.seccomp:
            parts.append("seccomp")
        return "+".join(parts)

    def _changed(self, account: str, region: str, name: str) -> None:
        """Called on control's thread after a commit: hop to the event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._forget, account, region, name)

    def async_settings_changed(self, account: str, region: str, name: str) -> None:
        """A function's EventInvokeConfig changed (on control's thread): only the async side cares."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.async_invoker.forget, account, region, name)

    def _forget(self, account: str, region: str, name: str) -> None:
        self.service.forget(account, region, name)
        self.async_invoker.forget(account, region, name)
        prefix = f"{account}:{region}:{name}:"
        self.worker.retire(lambda key: key.startswith(prefix) and not self._still_current(key))
        self.provisioner.reconcile(account, region, name)
        self.snapstart.reconcile(account, region, name)

    def _still_current(self, key: str) -> bool:
        """Whether environments of a spec key still run what the version is now (published
        versions never change; $LATEST does, and a deleted function or version is gone)."""
        account, region, name, version, revision = parse_spec_key(key)
        record = self.store.get_version(account, region, name, version)
        return record is not None and str(record.config.get("RevisionId")) == revision

    def provisioned_status(
        self, account: str, region: str, name: str, qualifier: str, requested: int
    ) -> tuple[int, str | None]:
        return self.provisioner.status(account, region, name, qualifier, requested)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.isolation == "process":
            log.warning(
                "ISOLATION IS OFF: this host offers neither namespaces nor user namespaces; functions run as "
                "plain processes with rlimits only. Do not run untrusted code here."
            )
        if self.cgroups is not None:
            swept = await asyncio.to_thread(self.cgroups.sweep)
            if swept:
                log.info("removed %d environment cgroups left by servers that are gone", swept)
        if self.isolation != "process":
            try:
                await self.network.open()
            except NetworkUnavailable as e:
                self.network_problem = str(e)
                log.warning("FUNCTIONS HAVE NO NETWORK (loopback only): %s", e)
        if self.tmp_disks is not None:
            self.tmp_disks.start()
        log.info("isolation: %s; runtimes: %s", self.isolation_label, ", ".join([*self.pythons, *self.nodes]))
        await self.worker.start()
        await self.async_invoker.start()
        self.provisioner.reconcile_all()
        self.snapstart.resume()
        await self.usage_keeper.start()

    async def stop(self) -> None:
        self.usage_keeper.sample()  # provisioned environments up to now, before the worker stops them
        await self.snapstart.stop()
        await self.async_invoker.stop()
        await self.worker.stop()
        if self.service.tracing is not None:
            await asyncio.to_thread(self.service.tracing.shutdown)  # what is still queued is exported
        if self.tmp_disks is not None:
            self.tmp_disks.close()
        await self.network.close()
        await self.queue.close()
        await self.usage_keeper.stop()  # after the last invocation has ended
        self.event_invoke_configs.close()
        self.logs.close()
        if self.cgroups is not None:
            self.cgroups.close()

    def describe(self) -> dict[str, Any]:
        return {
            "isolation": self.isolation_label,
            "runtimes": [*self.pythons, *self.nodes, *self.javas.runtimes, *sorted(CUSTOM_RUNTIMES)],
            "environments": len(self.worker.environments()),
            "prebuilt": self.worker.prebuilt_status(),
            "cpu_latency": self.worker.cpu_latency.status(),
            "network": self._network_status(),
            "tmp": "disk" if self.tmp_disks is not None else "tmpfs",
        }

    def _network_status(self) -> dict[str, Any]:
        if self.isolation == "process":
            return {"egress": "host", "note": "process isolation: functions share the host's network"}
        status = self.network.describe()
        if self.network_problem:
            status["problem"] = self.network_problem
        return status


def _loopback_port(host: str, port: int) -> int | None:
    """The server's port if it answers on the host's loopback (where a user-mode network's
    gateway leads), else None."""
    if host in ("", "0.0.0.0", "::", "localhost"):
        return port
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return port
    return None


def _reserved_of(store: Store) -> Callable[[str, str, str], int | None]:
    def reserved(account: str, region: str, name: str) -> int | None:
        record = store.get_function(account, region, name)
        return record.reserved_concurrency if record is not None else None

    return reserved


def _reserved_total(store: Store) -> Callable[[str, str], int]:
    def total(account: str, region: str) -> int:
        with store.read() as tx:
            return tx.reserved_concurrency_total(account, region)

    return total
