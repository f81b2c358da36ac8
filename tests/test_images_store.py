"""The image store under concurrency: a prune never takes what a pull is making or has just made.

Two functions on one image index (or on images sharing a layer) are pulled at the same
time, and every settled pull prunes what nothing references: these tests hold one pull
still half-way and prune around it, against a real registry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import image_builder as ib
import pytest

from lambdastack.images import credentials
from lambdastack.images.reference import ImageReference
from lambdastack.images.registry import RegistryClient
from lambdastack.images.store import ImageStore, PulledImage

pytestmark = pytest.mark.timeout(60)


class HeldClient(RegistryClient):
    """Pauses in the middle of a layer's bytes until released."""

    def __init__(self) -> None:
        super().__init__(credentials.lookup)
        self.reached = threading.Event()
        self.release = threading.Event()
        self.hold = False

    def blob_chunks(self, ref: ImageReference, digest: str) -> Iterator[bytes]:
        chunks = iter(super().blob_chunks(ref, digest))
        first = next(chunks, b"")
        yield first[:1]
        if self.hold:
            self.reached.set()
            assert self.release.wait(30)
        yield first[1:]
        yield from chunks


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[ImageStore, HeldClient]]:
    client = HeldClient()
    images = ImageStore(tmp_path / "images", client)
    yield images, client
    images.stop()


def push(registry: ib.Registry, workdir: Path, repository: str, content: str) -> str:
    image = ib.Image(workdir, entrypoint=["/bootstrap"])
    image.add_layer(ib.layer([ib.file("bootstrap", content, 0o755)]))
    return registry.push(image.write(), repository, "v1")


def test_a_prune_waits_out_a_pull_half_way(store: tuple[ImageStore, HeldClient], registry: ib.Registry,
                                           tmp_path: Path) -> None:
    images, client = store
    done = images.pull(push(registry, tmp_path / "a", "store/done", "#!/bin/sh\necho done\n"))
    held_uri = push(registry, tmp_path / "b", "store/held", "#!/bin/sh\necho held\n")
    client.hold = True
    outcome: list[PulledImage] = []
    puller = threading.Thread(target=lambda: outcome.append(images.pull(held_uri)))
    puller.start()
    assert client.reached.wait(30)
    # Nothing references either root yet: a prune now would take the finished one and the
    # half-written blob of the other.
    assert images.prune(lambda _: False) == []
    client.release.set()
    puller.join(30)
    (held,) = outcome
    assert (images.root_path(held.root_id) / "bootstrap").read_text() == "#!/bin/sh\necho held\n"
    assert images.root_path(done.root_id).is_dir()
    # Once nobody is pulling, what nothing references goes.
    assert sorted(images.prune(lambda _: False)) == sorted([done.root_id, held.root_id])
    assert not images.root_path(done.root_id).exists()


def test_a_root_stays_until_its_function_is_recorded(store: tuple[ImageStore, HeldClient], registry: ib.Registry,
                                                     tmp_path: Path) -> None:
    images, _ = store
    uri = push(registry, tmp_path / "c", "store/recorded", "#!/bin/sh\necho recorded\n")
    with images.busy():  # as the activation holds it from its pull to its commit
        pulled = images.pull(uri)
        assert images.prune(lambda _: False) == []
        assert images.root_path(pulled.root_id).is_dir()
    assert images.prune(lambda root_id: root_id == pulled.root_id) == []
    assert images.root_path(pulled.root_id).is_dir()
