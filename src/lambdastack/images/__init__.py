"""Container images: fetched from any OCI registry (distribution API v2), verified by
digest, and unpacked once per image into a read-only root filesystem that every
environment of every function using that image shares.

    reference    ImageUri text -> registry, repository, tag or digest
    credentials  who we are to a registry (docker-style config.json)
    registry     the distribution API client: auth, manifests (indexes too), blobs
    blobcache    blobs on disk by digest, verified while they are written
    unpack       layers -> a root filesystem: whiteouts, no path escaping the root
    store        pull = resolve + fetch + unpack, once per image; removal of unused ones

This package imports nothing from the rest of lambdastack: control pulls images with it,
and the engine finds their root filesystems with it.
"""
