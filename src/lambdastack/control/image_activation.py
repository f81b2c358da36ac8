"""Image functions go from Pending (or InProgress) to Active / Successful once their image is ready.

Every committed change of an image function is noticed here (a change listener), noted in
a small journal on disk and handed to a thread of our own: the image is pulled (or found
already pulled), and each version waiting for that pull is settled, or marked Failed with
Lambda's reason code (ImageDeleted, ImageAccessDenied, InvalidImage, InternalError). The
journal names the functions with work left, so a restart picks up pulls it was in the
middle of. Roots no version references any more are removed after deletions and updates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lambdastack.control import images, states
from lambdastack.control.events import Events
from lambdastack.images.errors import INTERNAL_ERROR, Cancelled, ImageError
from lambdastack.images.store import ImageStore
from lambdastack.store.base import Store
from lambdastack.store.records import LATEST, VersionRecord

log = logging.getLogger("lambdastack.control.images")

Key = tuple[str, str, str]  # account, region, function name


class ImageActivation:
    def __init__(self, store: Store, events: Events, images_store: ImageStore, *, unsupported: str | None = None,
                 workers: int = 2) -> None:
        """`unsupported`: why this server cannot run images at all (then they fail with it)."""
        self.store = store
        self.events = events
        self.images = images_store
        self.unsupported = unsupported
        self.journal = images_store.folder / "pending"
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="images")
        self._locks: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stopped = False
        events.on_function_changed(self._changed)
        events.on_function_deleted(self._deleted)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Resume the work a previous run left, and remove roots nothing references."""
        self.journal.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.journal.glob("*.json")):
            try:
                account, region, name = json.loads(entry.read_text())
            except (OSError, ValueError):
                entry.unlink(missing_ok=True)
                continue
            self._submit((account, region, name))
        referenced = self.store.referenced_code()
        self._executor.submit(self._prune, lambda root_id: root_id in referenced)

    def stop(self) -> None:
        self._stopped = True
        self.images.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ notifications

    def _changed(self, account: str, region: str, name: str) -> None:
        """On control's thread, after a commit: quick, and no call back into control."""
        latest = self.store.get_version(account, region, name, LATEST)
        if latest is None or not images.is_image(latest.config):
            return
        key = (account, region, name)
        self._journal_path(key).parent.mkdir(parents=True, exist_ok=True)
        self._journal_path(key).write_text(json.dumps(list(key)))
        self._submit(key)

    def _deleted(self, account: str, region: str, name: str) -> None:
        self._journal_path((account, region, name)).unlink(missing_ok=True)
        if not self._stopped:
            self._executor.submit(self._prune, self._in_use)

    def _submit(self, key: Key) -> None:
        if not self._stopped:
            self._executor.submit(self._reconcile, key)

    def _journal_path(self, key: Key) -> Path:
        return self.journal / (hashlib.sha256("\0".join(key).encode()).hexdigest()[:32] + ".json")

    # ------------------------------------------------------------------ the work

    def _reconcile(self, key: Key) -> None:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            try:
                self._settle(key)
            except Cancelled:
                return
            except Exception:
                log.exception("could not activate the image of %s", "/".join(key))

    def _settle(self, key: Key) -> None:
        with self.store.read() as tx:
            waiting = [v for v in tx.list_versions(*key) if _waiting(v)]
        if not waiting:
            self._journal_path(key).unlink(missing_ok=True)
            return
        pulls: dict[str, VersionRecord] = {}
        for record in waiting:
            pulls.setdefault(str(images.image_state(record.config).get("PullId")), record)
        for pull_id, record in pulls.items():
            if self._stopped:
                raise Cancelled()
            with self.images.busy():  # until the root is referenced: no prune takes it before
                self._finish(key, pull_id, *self._outcome(record))
        self.events.function_changed(*key)  # brings us back here once more: nothing left, journal gone
        self._prune(self._in_use)

    def _outcome(self, record: VersionRecord) -> tuple[dict[str, object] | None, tuple[str, str] | None]:
        """(what was resolved, None) or (None, (reason, reason code))."""
        config = record.config
        state = images.image_state(config)
        if images.is_ready(config):
            return images.resolved(config), None
        if self.unsupported:
            return None, (self.unsupported, INTERNAL_ERROR)
        architecture = (config.get("Architectures") or ["x86_64"])[0]
        try:
            pulled = self.images.pull(str(state.get("Uri")), architecture)
        except ImageError as e:
            log.info("image %s of %s is not usable: %s", state.get("Uri"), record.function_name, e.message)
            return None, (e.message, e.code)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as e:
            log.exception("pulling %s failed", state.get("Uri"))
            return None, (f"Lambda could not prepare the image {state.get('Uri')}: {e}", INTERNAL_ERROR)
        return dict(pulled.as_config(), PullId=state.get("PullId")), None

    def _finish(self, key: Key, pull_id: str, found: dict[str, object] | None, error: tuple[str, str] | None) -> None:
        with self.store.transaction() as tx:
            for record in tx.list_versions(*key):
                state = images.image_state(record.config)
                if not _waiting(record) or state.get("PullId") != pull_id:
                    continue
                config = dict(record.config)
                if found is not None:
                    config[images.IMAGE] = dict(state, Resolved=found)
                    config["CodeSha256"] = str(found.get("Digest", "")).split(":", 1)[-1]
                    record.code_sha256_hex = str(found["Root"])
                    config = states.settled(config)
                else:
                    assert error is not None
                    config = states.failed(config, *error)
                    if images.resolved(config) is None:
                        # Nothing to run at all (a configuration change can make a Failed function Active).
                        config.update(State="Failed", StateReason=error[0], StateReasonCode=error[1])
                record.config = config
                tx.put_version(record)

    def _in_use(self, root_id: str) -> bool:
        with self.store.read() as tx:
            return tx.code_in_use(root_id)

    def _prune(self, in_use: Callable[[str], bool]) -> None:
        try:
            removed = self.images.prune(in_use)
        except Exception:
            log.exception("could not remove unused images")
            return
        if removed:
            log.info("removed %d unused image root(s)", len(removed))


def _waiting(record: VersionRecord) -> bool:
    return images.is_image(record.config) and record.config.get("LastUpdateStatus") == "InProgress"
