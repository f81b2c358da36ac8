"""The composition root: build every part of the platform and wire them together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdastack import __version__, errors, file_systems
from lambdastack.api.asgi import LambdaApi
from lambdastack.api.async_status import ROUTE as ASYNC_ROUTE
from lambdastack.api.async_status import async_status_route
from lambdastack.api.cost import ROUTE as COST_ROUTE
from lambdastack.api.cost import cost_route
from lambdastack.api.deployments import ROUTE as DEPLOYMENTS_ROUTE
from lambdastack.api.deployments import deployments_route
from lambdastack.api.function_endpoint import FunctionEndpoint
from lambdastack.api.internal import code_download_route, health_route
from lambdastack.api.metrics_route import PUBLIC_ROUTE as PUBLIC_METRICS_ROUTE
from lambdastack.api.metrics_route import ROUTE as METRICS_ROUTE
from lambdastack.api.metrics_route import metrics_route
from lambdastack.api.operations import ControlRunner, build_operations
from lambdastack.api.operations import cloud_watch as cloudwatch_operations
from lambdastack.api.operations import cloud_watch_logs as logs_operations
from lambdastack.api.operations import event_invoke_config as event_invoke_config_operations
from lambdastack.api.operations import event_source_mappings as mapping_operations
from lambdastack.api.operations import function_urls as function_url_operations
from lambdastack.api.operations import http_apis as http_api_operations
from lambdastack.api.operations import invoke as invoke_operations
from lambdastack.api.operations import policies as policy_operations
from lambdastack.api.operations import rules as rule_operations
from lambdastack.api.operations import schedules as schedule_operations
from lambdastack.auth.keys import KeyStore
from lambdastack.auth.middleware import SignedRequests
from lambdastack.config import Settings
from lambdastack.control.code import CodeStore
from lambdastack.control.codeurls import ROUTE as CODE_ROUTE
from lambdastack.control.codeurls import CodeUrlSigner
from lambdastack.control.common import Deps
from lambdastack.control.event_invoke_config import EventInvokeConfigService
from lambdastack.control.event_source_mappings import EventSourceMappingService
from lambdastack.control.events import Events
from lambdastack.control.function_urls import FunctionUrlService
from lambdastack.control.http_apis import HttpApiService
from lambdastack.control.image_activation import ImageActivation
from lambdastack.control.plane import ControlPlane
from lambdastack.control.policies import PolicyService
from lambdastack.control.rules import RuleService
from lambdastack.control.s3code import S3CodeSource
from lambdastack.control.scheduler import ScheduleService
from lambdastack.control.states import States
from lambdastack.control.url_naming import UrlNaming
from lambdastack.deploy.service import DeploymentService
from lambdastack.engine import Engine
from lambdastack.events.function_urls.frontend import FunctionUrlFrontend
from lambdastack.events.http_apis.frontend import HttpApiFrontend
from lambdastack.events.mappings.runner import MappingRunner
from lambdastack.events.rules.bus import EventBus
from lambdastack.events.rules.scheduler import Scheduler
from lambdastack.events.s3_webhooks import ROUTE as S3_WEBHOOK_ROUTE
from lambdastack.events.s3_webhooks import s3_webhook_route
from lambdastack.events.schedules.runner import ScheduleRunner
from lambdastack.frontdoor import FrontDoor, HostFront
from lambdastack.identity.signatures import SignatureVerifier
from lambdastack.images import credentials
from lambdastack.images.registry import RegistryClient
from lambdastack.images.store import ImageStore, images_folder
from lambdastack.invoke.service import SYNC_PAYLOAD_LIMIT
from lambdastack.observe.cloudwatch_logs.service import LogsService
from lambdastack.observe.cloudwatch_metrics.emf import EmbeddedMetrics
from lambdastack.observe.cloudwatch_metrics.errors import InvalidParameterValue as MetricsInvalidParameterValue
from lambdastack.observe.cloudwatch_metrics.prometheus import Scrape
from lambdastack.observe.cloudwatch_metrics.recorder import MetricsRecorder
from lambdastack.observe.cloudwatch_metrics.service import CloudWatchService
from lambdastack.observe.cloudwatch_metrics.store import MetricStore
from lambdastack.observe.usage.ledger import UsageRow
from lambdastack.service_models import apigatewayv2_model, cloudwatch_model, events_model, logs_model, scheduler_model
from lambdastack.store.code_signing import SqliteCodeSigningStore
from lambdastack.store.event_source_mappings import SqliteMappingStore
from lambdastack.store.function_policies import SqlitePolicyStore
from lambdastack.store.function_urls import SqliteFunctionUrlStore
from lambdastack.store.http_apis import SqliteHttpApiStore
from lambdastack.store.rules import SqliteRuleStore
from lambdastack.store.schedules import SqliteScheduleStore
from lambdastack.store.sqlite import SqliteStore
from lambdastack.store.stream_checkpoints import SqliteCheckpointStore

# How often recorded metrics are written to disk (queries and scrapes write them first).
METRICS_FLUSH_SECONDS = 2.0
# How often events older than their log group's retention are deleted (reads delete them too).
RETENTION_SWEEP_SECONDS = 600.0

log = logging.getLogger(__name__)

IMAGES_NEED_NAMESPACES = (
    "Container images need namespace isolation; this server runs functions as plain processes (--isolation process)."
)


def build_control(settings: Settings) -> ControlPlane:
    """The control plane over the embedded store in `settings.data_dir`."""
    store = SqliteStore(settings.data_dir / "lambdastack.db")
    events = Events()
    deps = Deps(
        store=store,
        code=CodeStore(settings.data_dir),
        events=events,
        states=States(store, events),
        signer=CodeUrlSigner.from_data_dir(settings.data_dir),
        account_concurrency=settings.account_concurrency,
        s3_code=S3CodeSource(settings.aws_endpoint_url),
        code_signing=SqliteCodeSigningStore(settings.data_dir / "lambdastack.db"),
        file_systems={mapping.arn: mapping for mapping in settings.file_systems},
    )
    return ControlPlane.over(deps)


def signed_requests(signatures: SignatureVerifier) -> Callable[[Any], SignedRequests]:
    """`serve --auth sigv4`: what wraps the APIs. Open: the health route, and the routes with a check
    of their own (presigned code downloads, S3 webhooks' token)."""
    return lambda app: SignedRequests(app, signatures, open_paths=("/_lambdastack/health",),
                                      open_prefixes=(CODE_ROUTE, S3_WEBHOOK_ROUTE))


def build_app(settings: Settings) -> FrontDoor:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for mapping in settings.file_systems:
        file_systems.prepare(mapping)
    control = build_control(settings)
    # One thread runs every control-plane change: SQLite writes and zip unpacking stay off
    # the event loop, and changes are applied one after the other.
    control_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control")
    deps = control.deps
    engine = Engine(settings, deps.store, deps.code, deps.events)
    image_store = ImageStore(images_folder(settings.data_dir), RegistryClient(credentials.lookup))
    deps.image_exists = image_store.exists
    image_activation = ImageActivation(
        deps.store, deps.events, image_store,
        unsupported=IMAGES_NEED_NAMESPACES if engine.isolation == "process" else None,
    )
    control.provisioned.status_of = engine.provisioned_status
    deployments = DeploymentService(deps.store, control.aliases, engine.service.metrics, control_thread)
    deps.events.on_function_deleted(engine.service.metrics.forget)
    # CloudWatch metrics: recorded in memory on the invoke path, drained to disk by their own thread.
    recorder = MetricsRecorder()
    metrics_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")
    metrics_runner = ControlRunner(metrics_thread)
    metric_store = MetricStore(settings.data_dir / "metrics.db", recorder)
    engine.service.recorder = recorder
    engine.logs.metrics_tap = EmbeddedMetrics(recorder)

    def describe() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "auth": settings.auth, **engine.describe()}

    async def usage_rows(since: float, function: str | None) -> list[UsageRow]:
        await engine.usage_keeper.flush()  # what is still in memory counts too
        return await asyncio.to_thread(engine.usage.rows, since, function)

    endpoints: list[FunctionEndpoint] = []
    sweeps: list[asyncio.Task[None]] = []

    async def on_startup() -> None:
        await asyncio.get_running_loop().run_in_executor(control_thread, control.start)
        await asyncio.get_running_loop().run_in_executor(control_thread, image_activation.start)
        await engine.start()
        if engine.network.endpoint is not None:
            endpoints.append(FunctionEndpoint(guard(api) if guard is not None else api, engine.network.endpoint))
            endpoints[0].start()
        await deployments.start()
        await mapping_runner.start()
        scheduler.start()
        schedule_runner.start()
        sweeps.append(asyncio.create_task(sweep_retention()))
        sweeps.append(asyncio.create_task(flush_metrics()))

    async def flush_metrics() -> None:
        while True:
            await asyncio.sleep(METRICS_FLUSH_SECONDS)
            try:
                await metrics_runner(metric_store.flush)
            except Exception:
                log.exception("writing metrics to disk failed")

    async def gather_metrics() -> Scrape:
        totals = await metrics_runner(metric_store.snapshot_totals)
        environments: dict[str, int] = {}
        for env in engine.worker.environments():
            environments[env.state.value] = environments.get(env.state.value, 0) + 1
        queues = {(f["account"], f["region"], f["functionName"]): (f["queueDepth"], f["oldestEventAgeSeconds"])
                  for f in (await engine.async_invoker.describe())["functions"]}
        memory = engine.worker.memory
        return Scrape(totals, environments, engine.worker.prebuilt_count(), memory.capacity_mb, memory.committed_mb,
                      queues)

    async def sweep_retention() -> None:
        while True:
            try:
                await logs_runner(logs.sweep)
            except Exception:
                log.exception("the retention sweep of the logs failed")
            await asyncio.sleep(RETENTION_SWEEP_SECONDS)

    async def on_shutdown() -> None:
        for task in sweeps:
            task.cancel()
        await schedule_runner.stop()
        await scheduler.stop()
        await mapping_runner.stop()
        for endpoint in endpoints:
            await endpoint.stop()
        await deployments.stop()
        await engine.stop()
        await asyncio.get_running_loop().run_in_executor(None, image_activation.stop)
        await asyncio.get_running_loop().run_in_executor(control_thread, control.stop)
        await asyncio.get_running_loop().run_in_executor(control_thread, function_urls.urls.close)
        await asyncio.get_running_loop().run_in_executor(control_thread, policies.policies.close)
        await asyncio.get_running_loop().run_in_executor(control_thread, http_apis.store.close)
        await asyncio.get_running_loop().run_in_executor(control_thread, mappings.mappings.close)
        await asyncio.get_running_loop().run_in_executor(control_thread, rules.store.close)
        control_thread.shutdown(wait=True)
        logs_thread.shutdown(wait=True)
        await metrics_runner(metric_store.flush)
        await metrics_runner(metric_store.close)
        metrics_thread.shutdown(wait=True)

    operations = build_operations(control, control_thread)
    operations.update(invoke_operations.handlers(engine.service))
    event_invoke_configs = EventInvokeConfigService(deps, engine.event_invoke_configs)
    event_invoke_configs.on_change(engine.async_settings_changed)
    operations.update(event_invoke_config_operations.handlers(event_invoke_configs, ControlRunner(control_thread)))
    naming = UrlNaming(settings.url_host, settings.port)
    function_urls = FunctionUrlService(deps, SqliteFunctionUrlStore(settings.data_dir / "lambdastack.db"), naming)
    operations.update(function_url_operations.handlers(function_urls, ControlRunner(control_thread)))
    mappings = EventSourceMappingService(deps, SqliteMappingStore(settings.data_dir / "lambdastack.db"),
                                         dict(settings.mq_brokers))
    operations.update(mapping_operations.handlers(mappings, ControlRunner(control_thread)))
    mapping_runner = MappingRunner(mappings, engine.service, settings.aws_endpoint_url, ControlRunner(control_thread),
                                   SqliteCheckpointStore(settings.data_dir / "lambdastack.db"))
    policies = PolicyService(deps, SqlitePolicyStore(settings.data_dir / "lambdastack.db"))
    operations.update(policy_operations.handlers(policies, ControlRunner(control_thread)))
    api = LambdaApi(
        operations=operations,
        internal={
            "/_lambdastack/health": health_route(describe),
            METRICS_ROUTE: metrics_route(gather_metrics),
            DEPLOYMENTS_ROUTE: deployments_route(deployments, settings.account_id, settings.region),
            DEPLOYMENTS_ROUTE + "/": deployments_route(deployments, settings.account_id, settings.region),
            ASYNC_ROUTE: async_status_route(engine.async_invoker.describe),
            ASYNC_ROUTE + "/": async_status_route(engine.async_invoker.describe),
            COST_ROUTE: cost_route(usage_rows),
            CODE_ROUTE: code_download_route(control.deps.signer, control.deps.code.zip_path),
            S3_WEBHOOK_ROUTE: s3_webhook_route(settings.s3_webhook_token, engine.async_invoker.enqueue,
                                               settings.account_id, settings.region),
        },
        account=settings.account_id,
        default_region=settings.region,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        request_limits={"Invoke": SYNC_PAYLOAD_LIMIT, "InvokeWithResponseStream": SYNC_PAYLOAD_LIMIT},
    )
    http_apis = HttpApiService(SqliteHttpApiStore(settings.data_dir / "lambdastack.db"), naming)
    apigateway_api = LambdaApi(
        operations=http_api_operations.handlers(http_apis, ControlRunner(control_thread)),
        internal={},
        account=settings.account_id,
        default_region=settings.region,
        model=apigatewayv2_model(),
        validation_error=errors.BadRequest,
    )
    signatures = SignatureVerifier(settings.account_id, engine.credentials, dict(settings.access_keys),
                                   KeyStore(settings.data_dir))
    guard = signed_requests(signatures) if settings.auth == "sigv4" else None
    fronts: list[HostFront] = [FunctionUrlFrontend(function_urls, policies, engine.service, signatures),
              HttpApiFrontend(http_apis, policies, engine.service)]
    rules = RuleService(SqliteRuleStore(settings.data_dir / "lambdastack.db"))
    bus = EventBus(rules, engine.async_invoker.enqueue, ControlRunner(control_thread))
    scheduler = Scheduler(rules, engine.async_invoker.enqueue, ControlRunner(control_thread))
    schedules = ScheduleService(SqliteScheduleStore(settings.data_dir / "lambdastack.db"))
    schedule_runner = ScheduleRunner(schedules, engine.async_invoker.enqueue, ControlRunner(control_thread))
    events_api = LambdaApi(
        operations=rule_operations.handlers(rules, bus, ControlRunner(control_thread)),
        internal={}, account=settings.account_id, default_region=settings.region, model=events_model(),
    )
    scheduler_api = LambdaApi(
        operations=schedule_operations.handlers(schedules, ControlRunner(control_thread)),
        internal={}, account=settings.account_id, default_region=settings.region, model=scheduler_model(),
    )
    # CloudWatch Logs reads and rewrites log files: threads of its own, not the control thread's.
    logs_thread = ThreadPoolExecutor(max_workers=2, thread_name_prefix="logs")
    logs_runner = ControlRunner(logs_thread)

    def latest_config(account: str, region: str, name: str) -> dict[str, Any] | None:
        record = deps.store.get_version(account, region, name, "$LATEST")
        return record.config if record is not None else None

    logs = LogsService(engine.logs, latest_config)
    logs_api = LambdaApi(
        operations=logs_operations.handlers(logs, logs_runner),
        internal={}, account=settings.account_id, default_region=settings.region, model=logs_model(),
        validation_error=errors.InvalidParameter,
    )
    cloudwatch_api = LambdaApi(
        operations=cloudwatch_operations.handlers(CloudWatchService(metric_store), metrics_runner),
        internal={}, account=settings.account_id, default_region=settings.region, model=cloudwatch_model(),
        validation_error=MetricsInvalidParameterValue,
    )
    return FrontDoor(api, apigateway_api, fronts,
                     by_target={b"AWSEvents.": events_api, b"Logs_20140328.": logs_api,
                                b"GraniteServiceVersion20100801.": cloudwatch_api},
                     by_path={"/schedules": scheduler_api, "/schedule-groups": scheduler_api,
                              PUBLIC_METRICS_ROUTE: metrics_route(gather_metrics)},
                     guard=guard)
