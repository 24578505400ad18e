"""``python -m serving.storage_initializer SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]``.

The entrypoint of the ``storage-initializer`` image: what KServe's own storage initializer does
(its ``initializer-entrypoint``), with ``kserve_storage`` from PyPI. KServe runs it as the
predictor pod's init container with ``[storageUri, /mnt/models]``. S3 settings come from the
environment KServe injects from the service account's Secret (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ...). A failure is one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys

USAGE = "usage: python -m serving.storage_initializer SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) % 2:
        print(USAGE, file=sys.stderr)
        return 2
    from kserve_storage import Storage

    sources, destinations = args[0::2], args[1::2]
    for source, destination in zip(sources, destinations, strict=True):
        try:
            Storage.download(source, out_dir=destination)
        except Exception as e:  # kserve_storage raises bare Exception/RuntimeError/boto errors
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(
                f"storage-initializer: cannot copy {source} to {destination}: {reason}",
                file=sys.stderr,
            )
            return 1
        print(f"storage-initializer: copied {source} to {destination}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
