"""torchvision's download, mirror by mirror, told apart: unreachable (no network), reached but failed, or a full disk.

A failed download leaves nothing behind. `sources.load_splits` decides what each outcome means.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

from rnnlab.errors import DataError

TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


# torchvision's MD5 of each dataset's official t10k-labels-idx1-ubyte.gz (`<Class>.resources`), the files whose
# decompressed content `sources.TEST_LABELS_CONTENT_MD5` fingerprints. Kept so that provenance stays checkable
# (tests/test_user_mistakes.py checks they still agree with torchvision's); a folder's dataset is told by the
# decompressed content instead, since these MD5s change whenever a file is recompressed.
TEST_LABELS_MD5 = {"mnist": "ec29112dd5afa0611ce80d1b7f02629c", "fashion-mnist": "bb300cfdad3c16e7a12a480ee83cd310",
                   "kmnist": "7320c461ea6c1c855c0b718fb2a4b134"}


class MirrorsUnreachable(DataError):
    """No download mirror could be connected to: the one failure that means "no network"."""


def torchvision_download(data_dir: Path, dataset: str) -> None:
    """Download the four `.gz` files with torchvision into `data_dir/<Name>/raw` and unpack them there (the
    layout `torchvision.datasets.<Name>(download=True)` makes), trying the class's mirrors in turn.

    Raises `MirrorsUnreachable` when no mirror of a file could be connected to (no network), `DataError`
    when a mirror was reached but the download failed or the file could not be saved; any other exception
    is a bug and propagates. A failed download leaves nothing behind.
    """
    from torchvision import datasets

    cls = getattr(datasets, TORCHVISION_CLASS[dataset])
    raw = data_dir / TORCHVISION_CLASS[dataset] / "raw"
    with _undone_on_failure(raw):
        for filename, md5 in cls.resources:
            _download_file(cls.mirrors, raw, filename, md5)


def _download_file(mirrors: list[str], raw: Path, filename: str, md5: str) -> None:
    """`filename` from the first of `mirrors` that serves it intact, via torchvision's
    `download_and_extract_archive` (its MD5 check, its unpacking).

    torchvision's own `download()` folds every mirror's failure into one `RuntimeError` string; calling it
    per mirror keeps the exceptions apart, so that "unreachable" can be told precisely: urllib raises a
    `URLError` that is not an `HTTPError` when it could not connect (no DNS, refused, no route, timeout,
    TLS handshake). Everything else either reached the mirror (an HTTP error status, a file with the wrong
    MD5, a connection that broke off mid-transfer), is the local disk (any other `OSError`: full,
    read-only, no permission), or is a bug.
    """
    import http.client
    import ssl
    from urllib.error import HTTPError, URLError

    from torchvision.datasets import utils

    answers, reached = [], False
    for mirror in mirrors:
        host = urlparse(mirror).netloc
        try:
            # torchvision's progress bars go to stdout with our other progress lines: stderr is kept for
            # the one line an error gets.
            with contextlib.redirect_stderr(sys.stdout):
                utils.download_and_extract_archive(f"{mirror}{filename}", download_root=str(raw),
                                                   filename=filename, md5=md5)
            return
        except HTTPError as exc:
            reached = True
            answers.append(f"{host}: HTTP {exc.code} {exc.reason}")
        except URLError as exc:  # could not connect: the mirror was never reached
            answers.append(f"{host}: {getattr(exc.reason, 'strerror', None) or exc.reason}")
        except (ConnectionError, TimeoutError, ssl.SSLError, http.client.HTTPException) as exc:
            reached = True  # connected (urllib would have said URLError otherwise), then lost the connection
            answers.append(f"{host}: connection lost ({exc or type(exc).__name__})")
        except RecursionError:  # torchvision's "exceeded N redirects", a RuntimeError: caught before those
            reached = True
            answers.append(f"{host}: too many redirects")
        except RuntimeError:
            # torchvision's "File not found or corrupted." after its MD5 check. Only a file that is there with
            # the wrong MD5 is a corrupt download; any other RuntimeError is unexpected and propagates.
            path = raw / filename
            if not path.is_file() or utils.check_integrity(str(path), md5):
                raise
            reached = True
            answers.append(f"{host}: corrupt download (MD5 mismatch)")
        except OSError as exc:  # not the network (those are above): the folder cannot take the file
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            hint = "free some space there or give --data-dir another folder" if full else \
                "give --data-dir a folder you can write to"
            raise DataError(f"cannot save {filename} in {raw}: {exc.strerror or exc}; {hint}") from None
    if not reached:
        raise MirrorsUnreachable(f"the download mirrors are unreachable ({'; '.join(answers)})")
    raise DataError(
        f"downloading {filename} failed ({'; '.join(answers)}); try again later, or put the four IDX files "
        f"in {raw.parent.parent}"
    )


@contextlib.contextmanager
def _undone_on_failure(raw: Path):
    """Remove what a failed download created under `raw` (folders, partial or corrupt files): a half-filled
    folder would be refused as incomplete by the next run, and a user error must leave nothing behind.
    What was there before is never touched."""
    created = raw if not raw.exists() else None  # the top-most folder the download will create, if any
    while created is not None and not created.parent.exists():
        created = created.parent
    before = set(os.listdir(raw)) if created is None and raw.is_dir() else set()
    try:
        yield
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        elif raw.is_dir():
            for name in set(os.listdir(raw)) - before:
                path = raw / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise
